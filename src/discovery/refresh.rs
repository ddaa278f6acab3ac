//! One refresh of one upstream, as a state machine with no I/O.
//!
//! The caller (the main thread, through Envoy's config-level HTTP callouts) loops:
//!
//! ```text
//! let mut r = Refresh::new(&settings);
//! while let Some(req) = r.next_request() {          // GET req.path_and_query, signed
//!     let (status, body) = send(req);
//!     if let Err(e) = r.on_response(status, &body) { /* count e.kind(), keep the old set */ }
//! }
//! let set = r.finish()?;                             // publish to the FunctionTable
//! ```
//!
//! Order: every `ListFunctions` page (following `NextMarker`), then for each included function
//! in name order its `ListAliases` pages (if `aliases`) and its `ListVersionsByFunction` pages
//! (if `versions`). `include`/`exclude` apply to the function's own name while listing, so
//! excluded functions cost no further calls.
//!
//! **Any failed step fails the whole refresh**, and the refresh stops there: `next_request`
//! returns `None` and `finish` returns the error. A partial set is never produced, because
//! publishing one would turn functions that exist into 404s; the caller keeps serving the
//! previous good set and retries after a back-off. The one exception is a per-function call
//! answered 404: the function was deleted after it was listed, so it is left out and the
//! refresh goes on (otherwise a busy account would never complete a refresh).
//!
//! A refresh made with [`Refresh::reusing`] (the `aliases_refresh_interval` option) lists every
//! function but makes per-function calls only for functions the previous set does not have;
//! for the others it keeps the previous set's `name:alias` / `name:version` entries.
//!
//! Loop guards, both **errors** (same reasoning: no partial set): a `NextMarker` already seen
//! in the same listing, and a listing longer than [`Limits::max_pages_per_listing`] pages.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use super::lambda_api::{
    ApiCall, ApiRequest, PageError, StatusClass, classify_status, parse_aliases_page,
    parse_functions_page, parse_versions_page,
};
use super::set::DiscoveredSet;
use super::table::Snapshot;
use crate::config::DiscoverySettings;
use crate::config::NameFilter;
use crate::lambda::Qualifier;
use crate::lambda::aws_error::AwsError;

/// Guards against a misbehaving endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pages of one listing (ListFunctions, or one function's aliases/versions). 1000 pages of
    /// 50 is 50 000 functions, far above any real account.
    pub max_pages_per_listing: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pages_per_listing: 1000,
        }
    }
}

/// Why a refresh failed. Texts are for logs: they carry AWS's error message, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// A non-200 status (a 404 on a per-function call is not an error, see the module doc).
    Status {
        call: ApiCall,
        status: u16,
        class: StatusClass,
        /// `Type: Message` from the AWS error body, if it had one.
        detail: Option<String>,
    },
    /// A 200 whose body is not the expected page.
    BadPage { call: ApiCall, error: PageError },
    /// `NextMarker` repeated a marker of the same listing: the endpoint is paging in a loop.
    MarkerLoop { call: ApiCall, pages: usize },
    /// The listing still had a `NextMarker` after this many pages.
    TooManyPages { call: ApiCall, limit: usize },
    /// The callout failed without an HTTP status (reset, timeout, response too large).
    Transport { call: ApiCall, reason: String },
    /// `on_response` with no request outstanding, or `finish` before the end: a caller bug.
    NotWaiting,
}

/// Failure buckets for stats (`discovery_failures_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Auth,
    Throttled,
    Server,
    OtherStatus,
    BadResponse,
    Transport,
    Internal,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Auth => "auth",
            FailureKind::Throttled => "throttled",
            FailureKind::Server => "server",
            FailureKind::OtherStatus => "other_status",
            FailureKind::BadResponse => "bad_response",
            FailureKind::Transport => "transport",
            FailureKind::Internal => "internal",
        }
    }
}

impl RefreshError {
    pub fn kind(&self) -> FailureKind {
        match self {
            RefreshError::Status { class, .. } => match class {
                StatusClass::Auth => FailureKind::Auth,
                StatusClass::Throttled => FailureKind::Throttled,
                StatusClass::Server => FailureKind::Server,
                StatusClass::Ok | StatusClass::Other => FailureKind::OtherStatus,
            },
            RefreshError::BadPage { .. }
            | RefreshError::MarkerLoop { .. }
            | RefreshError::TooManyPages { .. } => FailureKind::BadResponse,
            RefreshError::Transport { .. } => FailureKind::Transport,
            RefreshError::NotWaiting => FailureKind::Internal,
        }
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::Status {
                call,
                status,
                detail,
                ..
            } => {
                write!(f, "{call} answered {status}")?;
                if let Some(d) = detail {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            RefreshError::BadPage { call, error } => write!(f, "{call}: {error}"),
            RefreshError::MarkerLoop { call, pages } => write!(
                f,
                "{call}: NextMarker repeats a marker of the same listing after {pages} pages"
            ),
            RefreshError::TooManyPages { call, limit } => {
                write!(f, "{call}: still paging after {limit} pages")
            }
            RefreshError::Transport { call, reason } => write!(f, "{call}: {reason}"),
            RefreshError::NotWaiting => f.write_str("no discovery request is outstanding"),
        }
    }
}

impl std::error::Error for RefreshError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Aliases,
    Versions,
}

#[derive(Debug)]
enum Phase {
    Functions,
    /// Listing `sub` of `functions[index]`.
    PerFunction {
        index: usize,
        sub: Sub,
    },
    Done,
    Failed(RefreshError),
}

/// One refresh in progress. See the module doc for the protocol.
#[derive(Debug)]
pub struct Refresh {
    filter: NameFilter,
    aliases: bool,
    versions: bool,
    limits: Limits,
    phase: Phase,
    /// Cursor of the current listing.
    marker: Option<String>,
    seen_markers: HashSet<String>,
    pages_in_listing: usize,
    /// Included function names, sorted once `ListFunctions` is done.
    functions: Vec<String>,
    /// `name:qualifier` entries of the function being listed, kept until its listings end.
    pending: Vec<String>,
    /// Invocable names of the functions done.
    names: Vec<String>,
    requests: usize,
    skipped_invalid: usize,
    vanished: usize,
    /// The previous set whose aliases/versions are kept for functions it already lists.
    reuse: Option<Arc<Snapshot>>,
    reused: usize,
}

impl Refresh {
    pub fn new(settings: &DiscoverySettings) -> Self {
        Self::with_limits(settings, Limits::default())
    }

    pub fn with_limits(settings: &DiscoverySettings, limits: Limits) -> Self {
        Self {
            filter: settings.filter.clone(),
            aliases: settings.aliases,
            versions: settings.versions,
            limits,
            phase: Phase::Functions,
            marker: None,
            seen_markers: HashSet::new(),
            pages_in_listing: 0,
            functions: Vec::new(),
            pending: Vec::new(),
            names: Vec::new(),
            requests: 0,
            skipped_invalid: 0,
            vanished: 0,
            reuse: None,
            reused: 0,
        }
    }

    /// Lists every function, but aliases/versions only of functions `previous` does not list
    /// (see the module doc). `previous` must come from a refresh with the same settings.
    pub fn reusing(settings: &DiscoverySettings, previous: Arc<Snapshot>) -> Self {
        Self {
            reuse: Some(previous),
            ..Self::new(settings)
        }
    }

    /// Functions whose aliases/versions were taken from the previous set.
    #[cfg(test)]
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// The request to send now, or `None` when the refresh is over (done or failed). Calling it
    /// again before `on_response` returns the same request.
    pub fn next_request(&self) -> Option<ApiRequest> {
        self.current_call()
            .map(|call| ApiRequest::new(call, self.marker.as_deref()))
    }

    /// Digests the reply to [`Self::next_request`]. An error ends the refresh (see module doc).
    pub fn on_response(&mut self, status: u16, body: &[u8]) -> Result<(), RefreshError> {
        let Some(call) = self.current_call() else {
            return Err(RefreshError::NotWaiting);
        };
        self.requests += 1;
        let result = self.digest(&call, status, body);
        if let Err(e) = &result {
            self.phase = Phase::Failed(e.clone());
        }
        result
    }

    /// The callout for [`Self::next_request`] failed without a status; ends the refresh.
    pub fn on_transport_failure(&mut self, reason: &str) -> RefreshError {
        let error = match self.current_call() {
            Some(call) => {
                self.requests += 1;
                RefreshError::Transport {
                    call,
                    reason: reason.to_owned(),
                }
            }
            None => RefreshError::NotWaiting,
        };
        if !matches!(self.phase, Phase::Done) {
            self.phase = Phase::Failed(error.clone());
        }
        error
    }

    #[cfg(test)]
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed(_))
    }

    /// The discovered set once every listing is done; the failure otherwise.
    pub fn finish(self) -> Result<DiscoveredSet, RefreshError> {
        match self.phase {
            Phase::Done => Ok(DiscoveredSet::from_names(self.names)),
            Phase::Failed(e) => Err(e),
            Phase::Functions | Phase::PerFunction { .. } => Err(RefreshError::NotWaiting),
        }
    }

    /// Requests answered (or failed) so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Listed names that are not valid function names, aliases or versions, left out.
    #[cfg(test)]
    pub fn skipped_invalid(&self) -> usize {
        self.skipped_invalid
    }

    /// Functions deleted between `ListFunctions` and their own listings, left out.
    #[cfg(test)]
    pub fn vanished(&self) -> usize {
        self.vanished
    }

    fn current_call(&self) -> Option<ApiCall> {
        match &self.phase {
            Phase::Functions => Some(ApiCall::ListFunctions),
            Phase::PerFunction { index, sub } => {
                let name = self.functions.get(*index)?.clone();
                Some(match sub {
                    Sub::Aliases => ApiCall::ListAliases(name),
                    Sub::Versions => ApiCall::ListVersions(name),
                })
            }
            Phase::Done | Phase::Failed(_) => None,
        }
    }

    fn digest(&mut self, call: &ApiCall, status: u16, body: &[u8]) -> Result<(), RefreshError> {
        if status == 404 && call.function().is_some() {
            self.vanished += 1;
            self.pending.clear();
            self.next_function();
            return Ok(());
        }
        let class = classify_status(status);
        if class != StatusClass::Ok {
            return Err(RefreshError::Status {
                call: call.clone(),
                status,
                class,
                // The same reader as the request path's: first line, redacted.
                detail: AwsError::read(None, body).summary(),
            });
        }
        let bad_page = |error| RefreshError::BadPage {
            call: call.clone(),
            error,
        };
        let next_marker = match call {
            ApiCall::ListFunctions => {
                let page = parse_functions_page(body).map_err(bad_page)?;
                for f in page.items {
                    if !crate::lambda::is_function_name(&f.name) {
                        self.skipped_invalid += 1;
                    } else if self.filter.allows(&f.name) {
                        self.functions.push(f.name);
                    }
                }
                page.next_marker
            }
            ApiCall::ListAliases(function) => {
                let page = parse_aliases_page(body).map_err(bad_page)?;
                for a in page.items {
                    self.add_qualified(function, &a.name);
                }
                page.next_marker
            }
            ApiCall::ListVersions(function) => {
                let page = parse_versions_page(body).map_err(bad_page)?;
                for v in page.items {
                    if v.version != "$LATEST" {
                        self.add_qualified(function, &v.version);
                    }
                }
                page.next_marker
            }
        };
        self.pages_in_listing += 1;
        match next_marker {
            Some(marker) => {
                if self.seen_markers.contains(&marker) {
                    return Err(RefreshError::MarkerLoop {
                        call: call.clone(),
                        pages: self.pages_in_listing,
                    });
                }
                if self.pages_in_listing >= self.limits.max_pages_per_listing {
                    return Err(RefreshError::TooManyPages {
                        call: call.clone(),
                        limit: self.limits.max_pages_per_listing,
                    });
                }
                self.seen_markers.insert(marker.clone());
                self.marker = Some(marker);
            }
            None => self.end_listing(),
        }
        Ok(())
    }

    fn add_qualified(&mut self, function: &str, qualifier: &str) {
        // Aliases and versions share Invoke's qualifier syntax; `$LATEST` is not an alias.
        if qualifier == "$LATEST" || Qualifier::parse(qualifier).is_err() {
            self.skipped_invalid += 1;
        } else {
            self.pending.push(format!("{function}:{qualifier}"));
        }
    }

    fn first_sub(&self) -> Option<Sub> {
        if self.aliases {
            Some(Sub::Aliases)
        } else if self.versions {
            Some(Sub::Versions)
        } else {
            None
        }
    }

    fn reset_cursor(&mut self) {
        self.marker = None;
        self.seen_markers.clear();
        self.pages_in_listing = 0;
    }

    fn end_listing(&mut self) {
        self.reset_cursor();
        match self.phase {
            Phase::Functions => {
                self.functions.sort_unstable();
                self.functions.dedup();
                if let (Some(previous), Some(_)) = (self.reuse.take(), self.first_sub()) {
                    let listed = std::mem::take(&mut self.functions);
                    for f in listed {
                        if previous.set.contains(&f) {
                            self.names
                                .extend(previous.set.qualified_of(&f).map(String::from));
                            self.names.push(f);
                            self.reused += 1;
                        } else {
                            self.functions.push(f);
                        }
                    }
                }
                match self.first_sub() {
                    Some(sub) if !self.functions.is_empty() => {
                        self.phase = Phase::PerFunction { index: 0, sub };
                    }
                    _ => {
                        self.names.append(&mut self.functions);
                        self.phase = Phase::Done;
                    }
                }
            }
            Phase::PerFunction {
                index,
                sub: Sub::Aliases,
            } if self.versions => {
                self.phase = Phase::PerFunction {
                    index,
                    sub: Sub::Versions,
                };
            }
            Phase::PerFunction { index, .. } => {
                if let Some(name) = self.functions.get(index) {
                    self.names.push(name.clone());
                }
                self.names.append(&mut self.pending);
                self.next_function();
            }
            Phase::Done | Phase::Failed(_) => {}
        }
    }

    /// Moves to the first listing of the next function (or to `Done`).
    fn next_function(&mut self) {
        self.reset_cursor();
        let Phase::PerFunction { index, .. } = self.phase else {
            return;
        };
        let next = index + 1;
        self.phase = match self.first_sub() {
            Some(sub) if next < self.functions.len() => Phase::PerFunction { index: next, sub },
            _ => Phase::Done,
        };
    }
}

#[cfg(test)]
mod tests;
