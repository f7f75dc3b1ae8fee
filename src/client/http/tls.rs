//! TLS beyond the built-in web PKI roots: extra trusted CAs and a client identity for
//! mutual TLS, read from PEM files when the client is built (a missing or bad file is a
//! configuration error then, not a failure of the first request).

use std::path::PathBuf;

use crate::client::error::ClientError;

/// TLS settings beyond the built-in web PKI roots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// A PEM bundle of extra trusted CA certificates (e.g. the DC/OS cluster CA).
    pub ca_bundle: Option<PathBuf>,
    /// A PEM client certificate (chain) for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsConfig {
    /// `builder` trusting the CA bundle and presenting the client identity, if given.
    pub(super) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, ClientError> {
        if let Some(ca) = &self.ca_bundle {
            let pem = std::fs::read(ca)
                .map_err(|e| ClientError::Config(format!("cannot read CA bundle {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Config(format!("CA bundle {}: {e}", ca.display())))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    ClientError::Config(format!("cannot read client certificate {}: {e}", cert.display()))
                })?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| {
                    ClientError::Config(format!("cannot read client key {}: {e}", key.display()))
                })?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ClientError::Config(format!("client certificate {}: {e}", cert.display()))
                })?;
                Ok(builder.identity(identity))
            }
            (None, None) => Ok(builder),
            _ => Err(ClientError::Config("a client certificate needs both a cert and a key file".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(tls: &TlsConfig) -> Result<(), ClientError> {
        tls.apply(reqwest::Client::builder().use_rustls_tls()).map(drop)
    }

    #[test]
    fn tls_files_are_checked_when_the_client_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let mut tls = TlsConfig { ca_bundle: Some(dir.path().join("missing.pem")), ..TlsConfig::default() };
        let err = apply(&tls).unwrap_err();
        assert!(err.to_string().contains("cannot read CA bundle"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        tls.ca_bundle = Some(empty.clone());
        apply(&tls).unwrap();

        tls.client_cert = Some(empty);
        let err = apply(&tls).unwrap_err();
        assert!(err.to_string().contains("both a cert and a key"), "{err}");
    }
}
