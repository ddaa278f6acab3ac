//! The request path: route → function, body hashing, event building, rewrite into a signed Invoke.

use std::borrow::Cow;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Awaiting, CREDENTIALS_EVENT, Finished, Kept, STREAM_CUT_EVENT};
use super::{BUFFER_HEADROOM, LambdaFilter, Pending, State, ensure_buffer_limit, parse_u64};
use super::{BodyStatus, HeadersStatus, TrailersStatus};
use crate::config::unresolved::{LogOnce, MAX_LOGGED};
use crate::config::{CredentialsFrom, Function, FunctionRef, Upstream};
use crate::credentials::{AwsCredentials, Lookup as CredentialsLookup, Resolved};
use crate::discovery::Lookup;
use crate::filter::client_headers::must_not_reach_aws;
use crate::filter::reply::LocalReply;
use crate::filter::shared::CREDENTIALS_UNAVAILABLE;
use crate::filter::trace::propagate_trace;
use crate::host::{Body, Counter, Direction, Host, LogLevel, body_chunks, replace_body};
use crate::lambda::events::{ChunkedBody, EventContext, HttpRequest, build_event};
use crate::lambda::{InvocationType, InvokeOptions, LogType, RequestFormat, shown_name};
use crate::sigv4::{LAMBDA_SERVICE, PayloadHasher, RequestToSign, sign};

impl LambdaFilter {
    pub fn on_request_headers(
        &mut self,
        host: &mut dyn Host,
        end_of_stream: bool,
    ) -> HeadersStatus {
        let Some(target) = host.route_target() else {
            return HeadersStatus::Continue;
        };
        let config = &self.shared.config;
        let Some(upstream) = config.upstream(&target.upstream).cloned() else {
            let message = format!(
                "the route names upstream '{}', which the filter config does not define",
                target.upstream
            );
            self.log_unresolved(host, &format!("upstream '{}'", target.upstream), &message);
            return self.reject_headers(host, LocalReply::new(500, "unknown_upstream", message));
        };
        self.obs.set_upstream(&upstream);
        let function = match self.resolve_function(host, &upstream, &target.function) {
            Ok(f) => f,
            Err(reply) => return self.reject_headers(host, reply),
        };
        self.obs.set_function(&function);
        let mut options = target.overrides.apply_to(&upstream.options);
        // A function's own invoke_mode sits between the upstream's and the route's.
        if let (None, Some(mode)) = (target.overrides.invoke_mode, function.invoke_mode) {
            options.invoke_mode = mode;
        }
        let limit = options.invocation_type.payload_limit();
        let client = scan_client_headers(host);
        let declared = if end_of_stream {
            None // no body follows, whatever the header says
        } else {
            client.content_length
        };
        if let Some(len) = declared {
            if len > limit {
                return self.reject_headers(host, too_large(len, options.invocation_type));
            }
        }
        let request =
            (options.request_format != RequestFormat::Raw).then(|| Box::new(capture_request(host)));
        // A raw payload is the client's body as it came: Envoy's codec has checked it against
        // its content-length, so that header may stay (saves removing it and setting it again).
        let raw = options.request_format == RequestFormat::Raw;
        let kept = Kept {
            content_length: declared.filter(|_| raw),
            // Event formats carry the client's method in the event; the Invoke is a POST.
            post: client.post,
        };
        for name in &client.strip {
            if kept.content_length.is_none() || !name.eq_ignore_ascii_case("content-length") {
                host.remove_header(Direction::Request, name);
            }
        }
        let pending = Box::new(Pending {
            upstream,
            function,
            options,
            hasher: PayloadHasher::new(),
            request,
            kept,
        });
        // Envoy's default 1 MiB buffer would refuse payloads Lambda accepts. (Responses that
        // are rewritten raise it again when they come.)
        if !end_of_stream {
            self.limit_before = Some(ensure_buffer_limit(host, limit + BUFFER_HEADROOM));
        }
        self.state = State::Collecting(pending);
        if end_of_stream {
            return match self.finish(host) {
                Ok(Finished::Sent) => HeadersStatus::Continue,
                Ok(Finished::Waiting) => HeadersStatus::StopIteration,
                Err(reply) => self.reject_headers(host, reply),
            };
        }
        HeadersStatus::StopIteration
    }

    /// A route names something this filter config does not define: a config mistake (or a
    /// config update still on its way), logged once per name. Names from request paths are
    /// the client's and are not logged.
    fn log_unresolved(&self, host: &dyn Host, key: &str, message: &str) {
        match self.shared.config.unresolved().note(key) {
            LogOnce::First => host.log(
                LogLevel::Warn,
                &format!("envoy-lambda: {message} (answered with an error; logged once)"),
            ),
            LogOnce::LimitReached => host.log(
                LogLevel::Warn,
                &format!(
                    "envoy-lambda: more than {MAX_LOGGED} routes name upstreams or functions \
                     this filter config does not define; further ones are not logged"
                ),
            ),
            LogOnce::Quiet => {}
        }
    }

    /// The route's function: from the config (these always win), else from discovery.
    fn resolve_function(
        &self,
        host: &dyn Host,
        upstream: &Upstream,
        function: &FunctionRef,
    ) -> Result<Arc<Function>, LocalReply> {
        let from_path = matches!(function, FunctionRef::FromPath(_));
        let name = match function {
            FunctionRef::Named(name) => Cow::Borrowed(name.as_str()),
            FunctionRef::FromPath(template) => {
                let path = host
                    .header(Direction::Request, ":path")
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .unwrap_or("");
                Cow::Owned(template.extract(path).ok_or_else(|| {
                    LocalReply::new(
                        404,
                        "unknown_function",
                        "the request path names no function",
                    )
                })?)
            }
        };
        if let Some(f) = upstream.functions.get(name.as_ref()) {
            return Ok(Arc::clone(f));
        }
        let not_found = || {
            // A path's name is the client's: any length, any bytes. Shown capped and escaped.
            let message = format!(
                "upstream '{}' has no function '{}'",
                upstream.name,
                shown_name(&name)
            );
            if !from_path {
                let key = format!("upstream '{}' function '{name}'", upstream.name);
                let logged = format!(
                    "a route names function '{name}' of upstream '{}', which does not define it",
                    upstream.name
                );
                self.log_unresolved(host, &key, &logged);
            }
            LocalReply::new(404, "unknown_function", message)
        };
        let Some(table) = self.shared.discovered.get(&upstream.name) else {
            return Err(not_found());
        };
        match table.lookup(&name) {
            Lookup::Found => Function::discovered(&name)
                .map(Arc::new)
                .map_err(|_| not_found()),
            Lookup::NotFound => Err(not_found()),
            Lookup::NotReady => Err(LocalReply::new(
                503,
                "discovery_pending",
                format!(
                    "upstream '{}' has not finished listing its functions yet; retry shortly",
                    upstream.name
                ),
            )),
        }
    }

    pub fn on_request_body(&mut self, host: &mut dyn Host, end_of_stream: bool) -> BodyStatus {
        let State::Collecting(pending) = &mut self.state else {
            return BodyStatus::Continue;
        };
        let received_len = if pending.request.is_some() {
            // Event formats read the whole body at the end; only count it now.
            body_chunks(host, Direction::Request)
                .iter()
                .map(|c| c.len() as u64)
                .sum()
        } else {
            if host.received_is_buffered(Direction::Request) {
                // The received data is the whole buffer (a resumed stream): start over with it.
                pending.hasher = PayloadHasher::new();
            }
            let hasher = &mut pending.hasher;
            host.for_each_chunk(Body::ReceivedRequest, &mut |chunk| hasher.update(chunk));
            hasher.len()
        };
        let limit = pending.options.invocation_type.payload_limit();
        if received_len > limit {
            let reply = too_large(received_len, pending.options.invocation_type);
            self.reject(host, reply);
            return BodyStatus::StopIterationNoBuffer;
        }
        if !end_of_stream {
            return BodyStatus::StopIterationAndBuffer;
        }
        match self.finish(host) {
            Ok(Finished::Sent) => BodyStatus::Continue,
            // Envoy keeps the body buffered until `continue_decoding`.
            Ok(Finished::Waiting) => BodyStatus::StopIterationAndBuffer,
            Err(reply) => {
                self.reject(host, reply);
                BodyStatus::StopIterationNoBuffer
            }
        }
    }

    /// With trailers, no body callback has end_of_stream set: the trailers are the end.
    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> TrailersStatus {
        if !matches!(self.state, State::Collecting(_)) {
            return TrailersStatus::Continue;
        }
        match self.finish(host) {
            Ok(Finished::Sent) => TrailersStatus::Continue,
            Ok(Finished::Waiting) => TrailersStatus::StopIteration,
            Err(reply) => {
                self.reject(host, reply);
                TrailersStatus::StopIteration
            }
        }
    }

    fn finish(&mut self, host: &mut dyn Host) -> Result<Finished, LocalReply> {
        let State::Collecting(pending) = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(Finished::Sent);
        };
        let Pending {
            upstream,
            function,
            options,
            hasher,
            request,
            kept,
        } = *pending;
        let (payload_hex, payload_len) = match request {
            None => {
                let digest = hasher.finish();
                (digest.hex().to_owned(), digest.len())
            }
            Some(request) => {
                let event = self.build_event(host, &upstream, &options, &request);
                if event.len() as u64 > options.invocation_type.payload_limit() {
                    return Err(too_large(event.len() as u64, options.invocation_type));
                }
                replace_body(host, Direction::Request, &event);
                host.set_header(Direction::Request, "content-type", "application/json");
                (hex::encode(Sha256::digest(&event)), event.len() as u64)
            }
        };
        self.invoke(
            host,
            upstream,
            function,
            options,
            (payload_hex, payload_len, kept),
        )
    }

    /// Signs and sends with the upstream's credentials, or pauses the stream until its
    /// provider delivers the first ones.
    fn invoke(
        &mut self,
        host: &mut dyn Host,
        upstream: Arc<Upstream>,
        function: Arc<Function>,
        options: InvokeOptions,
        (payload_hex, payload_len, kept): (String, u64, Kept),
    ) -> Result<Finished, LocalReply> {
        let shared = Arc::clone(&self.shared);
        let now = host.now();
        let resolved =
            shared
                .credentials
                .resolve(&shared.config, &upstream, |i| host.secret(i), now);
        match resolved {
            Resolved::Ready(creds) => {
                let payload = (payload_hex.as_str(), payload_len, kept);
                self.send_signed(host, &upstream, &function, &options, payload, &creds)?;
                Ok(Finished::Sent)
            }
            Resolved::Unavailable(message) => {
                Err(self.credentials_unavailable(host, &upstream, message))
            }
            Resolved::Pending(identity) => {
                let wait = match &upstream.credentials {
                    CredentialsFrom::Provider(p) => p.wait,
                    CredentialsFrom::Secret(_) => std::time::Duration::ZERO,
                };
                let awaiting = Box::new(Awaiting {
                    upstream,
                    function,
                    options,
                    payload_hex,
                    payload_len,
                    kept,
                    identity,
                    since: now,
                    deadline: now + wait,
                    ticket: None,
                });
                self.wait_for_credentials(host, awaiting)
            }
        }
    }

    /// Registers the stream with its identity's waiters (woken through the stream's
    /// scheduler), or signs at once if the credentials arrived meanwhile.
    fn wait_for_credentials(
        &mut self,
        host: &mut dyn Host,
        mut awaiting: Box<Awaiting>,
    ) -> Result<Finished, LocalReply> {
        let now = host.now();
        if now < awaiting.deadline {
            if let Some(waker) = host.waker() {
                let ticket =
                    awaiting
                        .identity
                        .current
                        .wait(waker, CREDENTIALS_EVENT, awaiting.deadline);
                if ticket.is_some() {
                    awaiting.ticket = ticket;
                    self.state = State::AwaitingCredentials(awaiting);
                    return Ok(Finished::Waiting);
                }
            }
        }
        // Arrived meanwhile, or no (more) waiting: look once more, without waiting.
        self.resume_awaiting(host, awaiting, false)
    }

    /// Looks again: signs with the credentials now there, waits on (if `may_wait` and the
    /// deadline has not passed), or answers 503.
    fn resume_awaiting(
        &mut self,
        host: &mut dyn Host,
        mut awaiting: Box<Awaiting>,
        may_wait: bool,
    ) -> Result<Finished, LocalReply> {
        awaiting.ticket = None;
        let now = host.now();
        match awaiting.identity.current.lookup(now) {
            CredentialsLookup::Ready(creds) => {
                let waited = now.duration_since(awaiting.since).unwrap_or_default();
                if !waited.is_zero() {
                    host.log(
                        LogLevel::Info,
                        &format!(
                            "envoy-lambda: a request to upstream '{}' waited {} ms for the first                              credentials",
                            awaiting.upstream.name,
                            waited.as_millis()
                        ),
                    );
                }
                let a = &*awaiting;
                let payload = (a.payload_hex.as_str(), a.payload_len, a.kept);
                self.send_signed(host, &a.upstream, &a.function, &a.options, payload, &creds)?;
                Ok(Finished::Sent)
            }
            CredentialsLookup::Pending if may_wait && now < awaiting.deadline => {
                self.wait_for_credentials(host, awaiting)
            }
            CredentialsLookup::Pending | CredentialsLookup::Expired => {
                let message = format!(
                    "no usable AWS credentials for upstream '{}' (source: {})",
                    awaiting.upstream.name,
                    awaiting.identity.source_name()
                );
                Err(self.credentials_unavailable(host, &awaiting.upstream, message))
            }
        }
    }

    /// A scheduler event of this stream (its worker): the credentials it waits for arrived,
    /// or its deadline passed.
    pub fn on_scheduled(&mut self, host: &mut dyn Host, event: u64) {
        if event == STREAM_CUT_EVENT {
            return self.on_stream_cut(host);
        }
        if event != CREDENTIALS_EVENT || !matches!(self.state, State::AwaitingCredentials(_)) {
            return;
        }
        let State::AwaitingCredentials(awaiting) = std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        match self.resume_awaiting(host, awaiting, true) {
            Ok(Finished::Sent) => host.continue_decoding(),
            Ok(Finished::Waiting) => {} // woken early; registered again
            Err(reply) => self.reject(host, reply),
        }
    }

    /// The 503 for an upstream without usable credentials; its warning is paced.
    fn credentials_unavailable(
        &self,
        host: &dyn Host,
        upstream: &Upstream,
        message: String,
    ) -> LocalReply {
        // Every request fails the same way until credentials arrive: one line per upstream
        // and period, not one per request.
        if let Some(held_back) =
            self.shared
                .credentials_log
                .check(&upstream.name, CREDENTIALS_UNAVAILABLE, host.now())
        {
            let more = if held_back > 0 {
                format!(" ({held_back} more since the last such line)")
            } else {
                String::new()
            };
            host.log(LogLevel::Warn, &format!("envoy-lambda: {message}{more}"));
        }
        let request_id = host
            .header(Direction::Request, "x-request-id")
            .and_then(|v| std::str::from_utf8(v).ok());
        LocalReply::new(503, CREDENTIALS_UNAVAILABLE, message).with_request_id(request_id)
    }

    /// The event JSON, written straight from Envoy's body chunks.
    fn build_event(
        &self,
        host: &dyn Host,
        upstream: &Upstream,
        options: &InvokeOptions,
        request: &HttpRequest,
    ) -> Vec<u8> {
        let chunks = body_chunks(host, Direction::Request);
        let content_type = request.header("content-type");
        let body = ChunkedBody::new(&chunks, content_type);
        build_event(
            options.request_format,
            request,
            &body,
            &EventContext {
                region: upstream.region.as_str(),
                time: host.now(),
            },
        )
    }

    /// Rewrites the request into a signed Invoke call. `kept`: what of the client's request
    /// stays as it came.
    fn send_signed(
        &mut self,
        host: &mut dyn Host,
        upstream: &Arc<Upstream>,
        function: &Function,
        options: &InvokeOptions,
        (payload_hex, payload_len, kept): (&str, u64, Kept),
        creds: &Arc<AwsCredentials>,
    ) -> Result<(), LocalReply> {
        // `host` and the Invoke options, as signed headers (a stack array: no allocation per
        // request).
        let mut signed_buf = [("", ""); 4];
        signed_buf[0] = ("host", upstream.endpoint.authority.as_str());
        let mut n = 1;
        if let Some(ctx) = options.client_context.as_deref() {
            signed_buf[n] = ("x-amz-client-context", ctx);
            n += 1;
        }
        // RequestResponse is Lambda's default: saying so would cost a header on every call.
        if options.invocation_type != InvocationType::Sync {
            signed_buf[n] = (
                "x-amz-invocation-type",
                options.invocation_type.header_value(),
            );
            n += 1;
        }
        if options.log_type == LogType::Tail {
            signed_buf[n] = ("x-amz-log-type", "Tail");
            n += 1;
        }
        let signed_headers = &signed_buf[..n];
        // InvokeWithResponseStream takes the same headers and signature; only the path differs.
        let path = if options.streams() {
            &function.stream_path
        } else {
            &function.invoke_path
        };
        let to_sign = RequestToSign {
            method: "POST",
            path_and_query: path,
            headers: signed_headers,
            payload_sha256_hex: payload_hex,
            // Lambda accepts it, and it binds the body to the signature.
            send_content_sha256: true,
            region: upstream.region.as_str(),
            service: LAMBDA_SERVICE,
            time: host.now(),
            normalize_path: true,
        };
        let signed = sign(&to_sign, creds)
            .map_err(|e| LocalReply::new(500, "signing_failed", e.to_string()))?;
        if !kept.post {
            host.set_header(Direction::Request, ":method", "POST");
        }
        host.set_header(Direction::Request, ":path", path);
        host.set_header(
            Direction::Request,
            ":authority",
            &upstream.endpoint.authority,
        );
        if kept.content_length != Some(payload_len) {
            host.set_header(
                Direction::Request,
                "content-length",
                itoa::Buffer::new().format(payload_len),
            );
        }
        // Every x-amz-* and authorization header of the client was stripped in
        // request_headers, so ours can be added without Envoy searching for old values.
        for (name, value) in signed_headers[1..].iter().copied() {
            host.add_header(Direction::Request, name, value);
        }
        for (name, value) in signed.headers() {
            host.add_header(Direction::Request, name, value);
        }
        if upstream.trace_propagation {
            propagate_trace(host);
        }
        host.increment(Counter::Invocations);
        self.obs.invoked(host, options.invocation_type, payload_len);
        self.state = State::Invoked(options.clone());
        self.invoked = Some(Arc::clone(upstream));
        Ok(())
    }
}

/// The client's request line and headers, for events (copied: Envoy's bytes do not outlive
/// the header edits that follow).
fn capture_request(host: &dyn Host) -> HttpRequest {
    let mut req = HttpRequest::default();
    for (name, value) in host.headers(Direction::Request) {
        match name.as_str() {
            ":method" => req.method = value,
            ":path" => req.path_and_query = value,
            ":authority" => req.host = value,
            n if n.starts_with(':') => {}
            _ => req.headers.push((name, value)),
        }
    }
    req.request_id = req.header("x-request-id").unwrap_or_default().to_owned();
    req.source_ip = host
        .source_address()
        .map(strip_port)
        .unwrap_or_default()
        .to_owned();
    req.protocol = "HTTP/1.1".into();
    req
}

/// `1.2.3.4:5678` → `1.2.3.4`; `[::1]:5678` → `::1`.
pub(super) fn strip_port(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => addr,
    }
}

/// What one pass over the client's headers tells (one ABI call, no lookups by name).
struct ClientHeaders {
    /// The headers that must not reach AWS.
    strip: Vec<String>,
    content_length: Option<u64>,
    /// `:method` is `POST`.
    post: bool,
}

fn scan_client_headers(host: &dyn Host) -> ClientHeaders {
    let mut out = ClientHeaders {
        strip: Vec::new(),
        content_length: None,
        post: false,
    };
    host.for_each_header(Direction::Request, &mut |name, value| {
        match name {
            b"content-length" => out.content_length = parse_u64(value),
            b":method" => out.post = value == b"POST",
            _ => {}
        }
        if must_not_reach_aws(name) {
            out.strip.push(String::from_utf8_lossy(name).into_owned());
        }
    });
    out
}

fn too_large(len: u64, invocation: InvocationType) -> LocalReply {
    let kind = match invocation {
        InvocationType::Async => "asynchronous",
        _ => "synchronous",
    };
    LocalReply::new(
        413,
        "payload_too_large",
        format!(
            "the request payload ({len} bytes) exceeds Lambda's {kind} payload limit of {} bytes",
            invocation.payload_limit()
        ),
    )
}
