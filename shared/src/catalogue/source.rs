//! Where a function reads the catalogue: the [`CatalogueSource`] port, [`S3Catalogue`] over the
//! S3 conditional-read adapter (`GetObject` with its ETag, the port
//! [`crate::retrain::lease::ConditionalStore`] that `adapters::s3_conditional` implements), and
//! [`InMemoryCatalogue`], a double that counts its reads.
//!
//! A function loads the document once at the start of an invocation and passes the
//! [`Loaded`] catalogue down: one read per invocation, nothing kept across invocations, so an
//! upload takes effect on the next event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::convention::Convention;
use super::model::Catalogue;
use super::validate::{Invalid, parse_with};
use crate::config::{ConfigError, Env};
use crate::error::{AwsError, Classify, ErrorClass};
use crate::retrain::lease::ConditionalStore;
use crate::storage::S3Uri;

/// A catalogue as read, with the version it was read at (the object's ETag).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub catalogue: Catalogue,
    /// `s3://bucket/key`.
    pub location: String,
    pub version: String,
}

impl Loaded {
    /// `s3://bucket/key@"etag"`, as logged and returned.
    pub fn describe(&self) -> String {
        format!("{}@{}", self.location, self.version)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the catalogue {location} does not exist (CATALOGUE_S3_URI)")]
    Missing { location: String },
    #[error("the catalogue {location} (version {version}) is not valid: {invalid}")]
    Invalid {
        location: String,
        version: String,
        invalid: Invalid,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for CatalogueError {
    fn class(&self) -> ErrorClass {
        match self {
            CatalogueError::Aws(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            CatalogueError::Missing { .. } => "CatalogueMissing",
            CatalogueError::Invalid { .. } => "InvalidCatalogue",
            CatalogueError::Aws(e) => e.code(),
        }
    }
}

/// The catalogue port.
#[async_trait]
pub trait CatalogueSource: Send + Sync {
    /// The document as it is now.
    async fn load(&self) -> Result<Loaded, CatalogueError>;
}

/// The catalogue in one S3 object.
pub struct S3Catalogue {
    store: Arc<dyn ConditionalStore>,
    uri: S3Uri,
    convention: Convention,
}

impl S3Catalogue {
    pub fn new(store: Arc<dyn ConditionalStore>, uri: S3Uri) -> Self {
        S3Catalogue {
            store,
            uri,
            convention: Convention::default(),
        }
    }

    /// Every read also checks the stack's naming convention: a name outside it makes the
    /// document invalid (`Permanent.InvalidCatalogue`, naming the model and the field).
    pub fn with_convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
    }
}

/// The naming convention of the functions' environment: `CATALOGUE_NAME_PREFIX`,
/// `CATALOGUE_ALARM_PREFIX`, `CATALOGUE_DATA_S3_URI` (each optional; unset is not enforced).
pub fn convention_from_env(env: &Env) -> Result<Convention, ConfigError> {
    let name_prefix = env.validated("CATALOGUE_NAME_PREFIX", |v| {
        Convention::check_name_prefix(v).map(|()| v.to_owned())
    })?;
    let alarm_prefix = env.validated("CATALOGUE_ALARM_PREFIX", |v| {
        if v.len() > 200 {
            Err("at most 200 characters".to_owned())
        } else {
            Ok(v.to_owned())
        }
    })?;
    let data_s3_uri = env.validated("CATALOGUE_DATA_S3_URI", |v| {
        S3Uri::parse(v).map(|_| v.to_owned())
    })?;
    Ok(Convention {
        name_prefix,
        alarm_prefix,
        data_s3_uri,
    })
}

#[async_trait]
impl CatalogueSource for S3Catalogue {
    async fn load(&self) -> Result<Loaded, CatalogueError> {
        let location = self.uri.to_string();
        let Some(object) = self.store.read(&self.uri).await? else {
            return Err(CatalogueError::Missing { location });
        };
        match parse_with(&object.body, &self.convention) {
            Ok(catalogue) => Ok(Loaded {
                catalogue,
                location,
                version: object.etag,
            }),
            Err(invalid) => Err(CatalogueError::Invalid {
                location,
                version: object.etag,
                invalid,
            }),
        }
    }
}

/// A catalogue in memory (tests): the document can be replaced between invocations, and reads
/// are counted.
#[derive(Default)]
pub struct InMemoryCatalogue {
    document: Mutex<(Vec<u8>, usize)>,
    pub loads: AtomicUsize,
    convention: Convention,
    /// Default `memory://catalogue.json`.
    location: Option<String>,
}

impl InMemoryCatalogue {
    pub fn new(document: impl Into<Vec<u8>>) -> Self {
        let c = InMemoryCatalogue::default();
        c.replace(document);
        c
    }

    /// Replaces the document (a new version).
    pub fn replace(&self, document: impl Into<Vec<u8>>) {
        let mut d = self.document.lock().unwrap();
        *d = (document.into(), d.1 + 1);
    }

    /// Where it says it was read from (an `s3://` URI, as the S3 source would).
    pub fn at(mut self, location: &str) -> Self {
        self.location = Some(location.to_owned());
        self
    }

    /// As [`S3Catalogue::with_convention`].
    pub fn with_convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
    }

    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CatalogueSource for InMemoryCatalogue {
    async fn load(&self) -> Result<Loaded, CatalogueError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let (body, version) = self.document.lock().unwrap().clone();
        let location = self
            .location
            .clone()
            .unwrap_or_else(|| "memory://catalogue.json".to_owned());
        let version = format!("\"v{version}\"");
        match parse_with(&body, &self.convention) {
            Ok(catalogue) => Ok(Loaded {
                catalogue,
                location,
                version,
            }),
            Err(invalid) => Err(CatalogueError::Invalid {
                location,
                version,
                invalid,
            }),
        }
    }
}
