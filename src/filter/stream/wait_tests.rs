//! Requests to a provider-backed upstream: signing with the current credentials, waiting
//! for the first ones (resumed through the stream's scheduler), 503 after the deadline or
//! once the cached ones expired, and a stream destroyed while waiting.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::config::{FilterConfig, RouteTarget};
use crate::credentials::Identity;
use crate::credentials::fake::{FakeWaker, held};
use crate::host::fake::FakeHost;
use crate::lambda::InvokeOverrides;

const CONFIG: &str = r#"{"name":"moto","spec":{"region":"us-east-1",
    "credentials":{"source":"container"},"credentials_wait":"2s",
    "endpoint":{"scheme":"http","host":"127.0.0.1","port":5000}},
    "functions":[{"name":"echo","spec":{"function_name":"echo"}}]}"#;

fn at(s: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_secs_f64(s)
}

fn rig() -> (LambdaFilter, FakeHost, Arc<Identity>) {
    let config = FilterConfig::from_json(CONFIG.as_bytes()).unwrap();
    let mut shared = SharedConfig::new(config);
    let identity = Identity::for_test("source: container");
    shared
        .credentials
        .insert_identity("moto", Arc::clone(&identity));
    let h = FakeHost {
        route: Some(Arc::new(RouteTarget {
            upstream: "moto".into(),
            function: crate::config::FunctionRef::Named("echo".into()),
            overrides: InvokeOverrides::default(),
        })),
        request_headers: vec![
            (":method".into(), "GET".into()),
            (":path".into(), "/echo".into()),
            (":authority".into(), "gw".into()),
            ("x-request-id".into(), "rid-1".into()),
        ],
        buffer_limit: 1024 * 1024,
        time: Some(at(0.0)),
        waker: Some(Arc::new(FakeWaker::default())),
        ..Default::default()
    };
    (LambdaFilter::new(Arc::new(shared)), h, identity)
}

fn authorization(h: &FakeHost) -> Option<String> {
    h.request("authorization").map(str::to_owned)
}

fn reply(h: &FakeHost) -> (u32, serde_json::Value) {
    let r = h.reply.as_ref().expect("a local reply");
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

#[test]
fn ready_credentials_sign_at_once_with_the_session_token() {
    let (mut f, mut h, id) = rig();
    id.current.store(held("ASIAREADY", Some(at(60.0))));
    assert_eq!(f.on_request_headers(&mut h, true), HeadersStatus::Continue);
    assert!(authorization(&h).unwrap().contains("Credential=ASIAREADY/"));
    assert_eq!(
        h.request("x-amz-security-token"),
        Some("token-of-ASIAREADY")
    );
    assert_eq!(h.continued, 0);
}

#[test]
fn a_request_before_the_first_credentials_waits_and_is_resumed() {
    let (mut f, mut h, id) = rig();
    assert_eq!(
        f.on_request_headers(&mut h, true),
        HeadersStatus::StopIteration
    );
    assert!(authorization(&h).is_none() && h.reply.is_none());
    assert_eq!(id.current.waiting(), 1);
    h.time = Some(at(0.4));
    id.current.store(held("ASIAFIRST", Some(at(60.0))));
    let waker = h.waker.clone().unwrap();
    assert_eq!(waker.events(), [CREDENTIALS_EVENT]);
    f.on_scheduled(&mut h, CREDENTIALS_EVENT);
    assert!(authorization(&h).unwrap().contains("Credential=ASIAFIRST/"));
    assert_eq!(
        h.request(":path"),
        Some("/2015-03-31/functions/echo/invocations")
    );
    assert_eq!(h.continued, 1, "the stream is resumed once");
    assert_eq!(h.count(Counter::Invocations), 1);
    let logs = h.logs.borrow();
    assert!(
        logs.iter().any(|(_, l)| l.contains("waited 400 ms")),
        "{logs:?}"
    );
}

#[test]
fn a_body_request_waits_with_its_body_buffered() {
    let (mut f, mut h, id) = rig();
    h.request_headers[0].1 = "POST".into();
    assert_eq!(
        f.on_request_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    h.put(crate::host::Body::ReceivedRequest, &[b"{\"a\":1}"]);
    assert_eq!(
        f.on_request_body(&mut h, true),
        BodyStatus::StopIterationAndBuffer
    );
    id.current.store(held("ASIAB", None));
    f.on_scheduled(&mut h, CREDENTIALS_EVENT);
    assert_eq!(h.request("content-length"), Some("7"));
    assert_eq!(h.continued, 1);
}

#[test]
fn the_wait_ends_with_a_503_at_its_deadline() {
    let (mut f, mut h, id) = rig();
    assert_eq!(
        f.on_request_headers(&mut h, true),
        HeadersStatus::StopIteration
    );
    // An early wake (another stream's deadline, say) registers again.
    h.time = Some(at(1.0));
    f.on_scheduled(&mut h, CREDENTIALS_EVENT);
    assert!(h.reply.is_none());
    assert_eq!(id.current.waiting(), 1);
    h.time = Some(at(2.0));
    f.on_scheduled(&mut h, CREDENTIALS_EVENT);
    let (status, body) = reply(&h);
    assert_eq!(status, 503);
    assert_eq!(body["error"], "credentials_unavailable");
    assert_eq!(
        body["message"],
        "no usable AWS credentials for upstream 'moto' (source: container)"
    );
    assert_eq!(body["request_id"], "rid-1");
    assert_eq!(h.continued, 0);
    assert_eq!(id.current.waiting(), 0);
    // Unknown or stale events do nothing.
    f.on_scheduled(&mut h, CREDENTIALS_EVENT);
    f.on_scheduled(&mut h, 99);
}

#[test]
fn expired_credentials_are_a_503_at_once_never_a_wait() {
    let (mut f, mut h, id) = rig();
    id.current.store(held("ASIAOLD", Some(at(0.0))));
    h.time = Some(at(1.0));
    assert_eq!(
        f.on_request_headers(&mut h, true),
        HeadersStatus::StopIteration
    );
    let (status, body) = reply(&h);
    assert_eq!(status, 503);
    assert_eq!(body["error"], "credentials_unavailable");
    assert!(!String::from_utf8_lossy(&h.reply.as_ref().unwrap().body).contains("ASIAOLD"));
    assert_eq!(id.current.waiting(), 0);
    assert_eq!(h.count(Counter::LocalRejections), 1);
}

#[test]
fn a_stream_destroyed_while_waiting_leaves_the_list_and_is_never_woken() {
    let (mut f, mut h, id) = rig();
    f.on_request_headers(&mut h, true);
    assert_eq!(id.current.waiting(), 1);
    drop(f);
    assert_eq!(id.current.waiting(), 0);
    id.current.store(held("ASIALATE", None));
    assert!(h.waker.unwrap().events().is_empty());
}

#[test]
fn without_a_scheduler_there_is_no_wait() {
    let (mut f, mut h, _id) = rig();
    h.waker = None;
    f.on_request_headers(&mut h, true);
    assert_eq!(reply(&h).0, 503);
}
