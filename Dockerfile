# mesosync as a small, non-root container image.
# Build: docker build -t mesosync:0.1.0 .
# Run:   docker run --rm -v /srv/manifests:/manifests:ro mesosync:0.1.0 \
#          run /manifests --marathon http://marathon.mesos:8080 --chronos http://chronos.mesos:4400 \
#          --listen 0.0.0.0:9100

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin mesosync \
    && strip target/release/mesosync

FROM debian:bookworm-slim
# git: the controller reads (and optionally pulls) the manifest checkout's revision.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin mesosync
COPY --from=build /src/target/release/mesosync /usr/local/bin/mesosync
USER 10001:10001
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/mesosync"]
CMD ["run", "/manifests", "--listen", "0.0.0.0:9100"]
