//! The shared bearer token of a taustar cluster: how it is read, compared and sent.
//!
//! The token never travels on a command line (where `ps` shows it to every user of a node):
//! it comes from a file (`--token-file PATH`, or `TAUSTAR_TOKEN_FILE` — what the Kubernetes
//! manifests set to the mounted Secret) or from the `TAUSTAR_TOKEN` environment variable (what
//! Slurm hands to every task). Both binaries need it, so it lives here, below both.
//!
//! Workers attach it to every call as `authorization: Bearer <token>` ([`BearerInterceptor`]);
//! the coordinator checks it in `coordinator::auth`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Environment variable carrying the token itself.
pub const TOKEN_ENV: &str = "TAUSTAR_TOKEN";
/// Environment variable naming the token file (same as `--token-file`).
pub const TOKEN_FILE_ENV: &str = "TAUSTAR_TOKEN_FILE";
/// The metadata key the token travels in.
pub const AUTHORIZATION: &str = "authorization";

/// A shared secret. `Debug`/`Display` print `<redacted>` so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a token could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The token (from `origin`) is empty.
    #[error("the token in {origin} is empty: put a random secret there (e.g. `openssl rand -hex 32`)")]
    Empty {
        /// Where it came from (a file path or an environment variable).
        origin: String,
    },
    /// The token contains characters that cannot travel in an HTTP/2 header.
    #[error("the token in {origin} contains whitespace or non-printable/non-ASCII characters; use e.g. `openssl rand -hex 32`")]
    Invalid {
        /// Where it came from.
        origin: String,
    },
    /// Both a token file and `TAUSTAR_TOKEN` were given.
    #[error("both a token file ({path}) and {TOKEN_ENV} are set; set only one")]
    Ambiguous {
        /// The token file.
        path: PathBuf,
    },
}

impl Token {
    /// Validate `text` (from `origin`, for messages): a trailing newline is dropped (files
    /// written by `echo` or `kubectl create secret --from-file` end with one); the rest must
    /// be non-empty printable ASCII without whitespace.
    pub fn parse(text: &str, origin: &str) -> Result<Token, TokenError> {
        let t = text.trim_end_matches(['\n', '\r']);
        if t.is_empty() {
            return Err(TokenError::Empty { origin: origin.to_string() });
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid { origin: origin.to_string() });
        }
        Ok(Token(t.into()))
    }

    /// Read a token file.
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| TokenError::Read { path: path.to_path_buf(), error })?;
        Token::parse(&text, &format!("token file {}", path.display()))
    }

    /// The token of this process: from `file` (`--token-file` / `TAUSTAR_TOKEN_FILE`, already
    /// resolved by clap) or from `TAUSTAR_TOKEN`; `None` when neither is set.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Token>, TokenError> {
        Token::resolve(file, std::env::var(TOKEN_ENV).ok())
    }

    /// [`Token::from_file_or_env`] with the environment value passed in (testable).
    pub fn resolve(file: Option<&Path>, env: Option<String>) -> Result<Option<Token>, TokenError> {
        match (file, env) {
            (Some(path), Some(_)) => Err(TokenError::Ambiguous { path: path.to_path_buf() }),
            (Some(path), None) => Token::from_file(path).map(Some),
            (None, Some(v)) => Token::parse(&v, &format!("${TOKEN_ENV}")).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The secret itself (to put on the wire; never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` equals this token, in time that depends only on the lengths (an
    /// attacker timing responses learns nothing about how many leading bytes matched).
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

/// Compare two byte strings without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Client interceptor: adds `authorization: Bearer <token>` to every call (none without a token).
#[derive(Clone, Debug)]
pub struct BearerInterceptor {
    header: Option<AsciiMetadataValue>,
}

impl BearerInterceptor {
    /// An interceptor sending `token` (or nothing).
    pub fn new(token: Option<&Token>) -> BearerInterceptor {
        // `Token::parse` admits only visible ASCII, which is always a valid header value.
        let header = token.and_then(|t| format!("Bearer {}", t.expose()).parse().ok());
        BearerInterceptor { header }
    }
}

impl Interceptor for BearerInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert(AUTHORIZATION, h.clone());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_newline_is_trimmed_and_inner_whitespace_refused() {
        assert_eq!(Token::parse("s3cret\n", "x").map(|t| t.expose().to_string()).ok(), Some("s3cret".into()));
        assert_eq!(
            Token::parse("s3cret\r\n", "x").map(|t| t.expose().to_string()).ok(),
            Some("s3cret".into())
        );
        assert!(matches!(Token::parse("a b", "x"), Err(TokenError::Invalid { .. })));
        assert!(matches!(Token::parse("é", "x"), Err(TokenError::Invalid { .. })));
    }

    #[test]
    fn empty_token_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "\n").unwrap();
        let err = Token::resolve(Some(&path), None).unwrap_err().to_string();
        assert!(err.contains("empty") && err.contains(&path.display().to_string()), "{err}");
        let missing = dir.path().join("missing");
        let err = Token::resolve(Some(&missing), None).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }

    #[test]
    fn file_env_and_neither() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(Token::resolve(Some(&path), None).unwrap().unwrap().expose(), "abc");
        assert_eq!(Token::resolve(None, Some("xyz".into())).unwrap().unwrap().expose(), "xyz");
        assert!(Token::resolve(None, None).unwrap().is_none());
        assert!(matches!(Token::resolve(Some(&path), Some("xyz".into())), Err(TokenError::Ambiguous { .. })));
        assert!(matches!(Token::resolve(None, Some(String::new())), Err(TokenError::Empty { .. })));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = Token::parse("hunter2", "x").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn constant_time_eq_agrees_with_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn interceptor_adds_the_header_only_with_a_token() {
        let t = Token::parse("abc", "x").unwrap();
        let req = BearerInterceptor::new(Some(&t)).call(Request::new(())).unwrap();
        assert_eq!(req.metadata().get(AUTHORIZATION).unwrap(), "Bearer abc");
        let req = BearerInterceptor::new(None).call(Request::new(())).unwrap();
        assert!(req.metadata().get(AUTHORIZATION).is_none());
    }
}
