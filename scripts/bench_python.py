#!/usr/bin/env python3
"""The Python side of `make bench` (issue #8): deploy a directory of Marathon app JSON
files (one app per file, the bodies mesosync itself would PUT) the way Python
deployment scripts did, against the emulator the Rust bench started.

Modes:
  client-put-wait  the `marathon` client library from PyPI: for each file in name
                   order, PUT /v2/apps/{id}?force=true, then poll GET /v2/deployments
                   every 0.1 s until that deployment is gone (the loop of
                   marathon-deploy's poll_deployments_for_app, without the tool's
                   interactive prompts and 3 s grace sleeps).
  client-put       the same PUTs with no wait at all: a lower bound for any
                   sequential Python client.
  marathon-deploy  the real `marathon-deploy` CLI from PyPI (3.0.2):
                   `marathon-deploy --marathon URL --put DIR`, answering its YES
                   prompt on stdin. Per app it lists every app, PUTs, and waits for
                   the deployment (0.5 s polls, 3 s grace sleeps).

Prints one JSON line: {"mode", "apps", "seconds"}.

Compatibility: `marathon` 0.13.0 (the newest on PyPI, which marathon-deploy pulls in)
uses `collections.Iterable`, removed in Python 3.10, so as published it fails on
every PUT. Both the client modes and marathon-deploy run with the one alias it needs
(`collections.Iterable = collections.abc.Iterable`) installed first: see
`with_collections_alias`.

marathon-deploy refuses to start unless `GET /ping` answers exactly `"pong"` (with
the JSON quotes): real Marathon answers that to a client asking for JSON
(SystemResource.ping), and so does the emulator. Nothing of the tool is changed.
"""

import argparse
import collections
import collections.abc
import json
import os
import subprocess
import sys
import time

POLL_SECONDS = 0.1


def with_collections_alias():
    """The alias `marathon` 0.13.0 needs on Python >= 3.10."""
    if not hasattr(collections, "Iterable"):
        collections.Iterable = collections.abc.Iterable


def app_files(directory):
    return [
        os.path.join(directory, name)
        for name in sorted(os.listdir(directory))
        if name.endswith(".json")
    ]


def client_mode(marathon_url, directory, wait):
    with_collections_alias()
    from marathon import MarathonApp, MarathonClient

    client = MarathonClient([marathon_url], timeout=30)
    count = 0
    for path in app_files(directory):
        with open(path) as handle:
            app = MarathonApp.from_json(json.load(handle))
        result = client.update_app(app.id, app, force=True)
        count += 1
        if not wait:
            continue
        deployment_id = result.get("deploymentId")
        while any(d.id == deployment_id for d in client.list_deployments()):
            time.sleep(POLL_SECONDS)
    return count


def marathon_deploy_mode(marathon_url, directory):
    # The installed console script, run by this interpreter after the alias.
    launcher = (
        "import collections, collections.abc, sys;"
        "collections.Iterable = collections.abc.Iterable;"
        "from marathon_deploy.deploytool import main;"
        "sys.argv[0] = 'marathon-deploy'; sys.exit(main())"
    )
    completed = subprocess.run(
        [sys.executable, "-c", launcher, "--marathon", marathon_url, "--put", directory],
        input="YES\n",
        text=True,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if completed.returncode != 0:
        sys.exit(f"marathon-deploy exited with {completed.returncode}")
    return len(app_files(directory))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["client-put-wait", "client-put", "marathon-deploy"])
    parser.add_argument("--marathon", required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    start = time.monotonic()
    if args.mode == "marathon-deploy":
        count = marathon_deploy_mode(args.marathon, args.dir)
    else:
        count = client_mode(args.marathon, args.dir, wait=args.mode == "client-put-wait")
    print(json.dumps({"mode": args.mode, "apps": count, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main()
