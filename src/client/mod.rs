//! HTTP clients for Marathon and Chronos over one reqwest layer ([`http`]). With
//! `apply`, the only code that talks to the APIs. The clients carry JSON as the APIs
//! report it and map answers to typed results and errors; they make no decisions about
//! what to write (that is `plan`) or when (that is `apply` and `runtime`).

pub mod chronos;
pub mod error;
pub mod http;
pub mod marathon;

pub use chronos::{ChronosClient, ChronosVersion};
pub use error::{ClientError, ErrorDetail};
pub use http::{Credentials, HttpConfig, RetryPolicy, Secret, TlsConfig};
pub use marathon::{Deployment, EventStream, MarathonClient, MarathonEvent, WriteResult};

use crate::model::LiveState;

/// The clients of one mesosync instance; a system left `None` is not managed.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    /// Marathon, if apps are managed.
    pub marathon: Option<MarathonClient>,
    /// Chronos, if jobs are managed.
    pub chronos: Option<ChronosClient>,
}

impl Clients {
    /// List live state with one GET per configured system (`label_selector` narrows
    /// the Marathon listing server-side).
    pub async fn list_live(&self, label_selector: Option<&str>) -> Result<LiveState, ClientError> {
        let apps = async {
            match &self.marathon {
                Some(m) => m.list_apps(label_selector).await,
                None => Ok(Vec::new()),
            }
        };
        let jobs = async {
            match &self.chronos {
                Some(c) => c.list_jobs().await,
                None => Ok(Vec::new()),
            }
        };
        let (apps, jobs) = futures::try_join!(apps, jobs)?;
        Ok(LiveState { apps, jobs })
    }
}
