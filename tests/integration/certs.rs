//! Test certificates made with `openssl` in a temp dir: a CA, a server certificate for
//! 127.0.0.1, and (optionally) a client certificate, all signed by that CA.
#![allow(dead_code)]

use std::path::Path;

/// Run `openssl` with these arguments in `dir`; false if it is missing or fails.
pub fn openssl(dir: &Path, args: &[&str]) -> bool {
    std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Make `name.key` + `name.pem` signed by `ca.pem`, with the extensions in `ext`.
fn signed(dir: &Path, name: &str, subject: &str, ext: &str) -> bool {
    let (key, csr, pem, ext_file) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
    std::fs::write(dir.join(&ext_file), ext).is_ok()
        && openssl(
            dir,
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject],
        )
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &ext_file,
            ],
        )
}

/// Write `ca.pem`/`ca.key`, `server.pem`/`server.key` (for IP 127.0.0.1) and, with
/// `client`, `client.pem`/`client.key` into `dir`. False when openssl is unavailable.
pub fn make(dir: &Path, client: bool) -> bool {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=mesosync-test-ca",
        ],
    ) && signed(dir, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        && (!client || signed(dir, "client", "/CN=mesosync", "extendedKeyUsage=clientAuth\n"))
}
