//! Per-function stats, access-log metadata, the REPORT line and trace propagation.

use std::time::{Duration, Instant};

use super::*;
use crate::host::FunctionStat;

fn filter_with(spec_extra: &str) -> LambdaFilter {
    let config = CONFIG.replace(
        r#""secret_ref":"creds","#,
        &format!(r#""secret_ref":"creds",{spec_extra}"#),
    );
    let config = FilterConfig::from_json(config.as_bytes()).unwrap();
    LambdaFilter::new(Arc::new(SharedConfig::new(config)))
}

fn tail_route(function: &str) -> Option<Arc<RouteTarget>> {
    route(
        function,
        InvokeOverrides {
            log_type: Some(LogType::Tail),
            ..Default::default()
        },
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

const WARM_REPORT: &str = "END RequestId: r1\nREPORT RequestId: r1\tDuration: 3.10 ms\t\
    Billed Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\n";
const COLD_REPORT: &str = "END RequestId: r2\nREPORT RequestId: r2\tDuration: 3.10 ms\t\
    Billed Duration: 160 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\
    Init Duration: 155.60 ms\t\n";

#[test]
fn invocations_bytes_and_round_trip_are_counted_for_the_invoked_function_only() {
    let mut f = filter();
    let mut h = host("echo-live", &get_headers());
    let start = Instant::now();
    h.instant = Some(start);
    h.request_headers[0] = (":method".into(), "POST".into());
    assert_eq!(
        f.on_request_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    send_body(&mut f, &mut h, b"0123456789", 4);
    h.instant = Some(start + Duration::from_millis(42));
    respond(
        &mut f,
        &mut h,
        &[
            (":status", "200"),
            ("content-length", "7"),
            ("x-amzn-requestid", "6f8c1a52-1d0c-4b0c-9d8e-0123456789ab"),
            ("x-amz-executed-version", "3"),
        ],
        b"{\"a\":1}",
    );
    let live = "moto|echo|live";
    assert_eq!(h.recorded(FunctionStat::Invocations, live), [1]);
    assert_eq!(h.recorded(FunctionStat::PayloadBytesIn, live), [10]);
    assert_eq!(h.recorded(FunctionStat::PayloadBytesOut, live), [7]);
    assert_eq!(h.recorded(FunctionStat::RoundTripMs, live), [42]);
    // Nothing for any other label set.
    assert!(
        h.recorded.iter().all(|(_, l, _)| l == live),
        "{:?}",
        h.recorded
    );
    assert_eq!(h.meta("function"), Some("echo"));
    assert_eq!(h.meta("qualifier"), Some("live"));
    assert_eq!(h.meta("invocation_type"), Some("RequestResponse"));
    assert_eq!(h.meta("request_bytes"), Some("10"));
    assert_eq!(h.meta("response_bytes"), Some("7"));
    assert_eq!(h.meta("round_trip_ms"), Some("42"));
    assert_eq!(
        h.meta("request_id"),
        Some("6f8c1a52-1d0c-4b0c-9d8e-0123456789ab")
    );
    assert_eq!(h.meta("executed_version"), Some("3"));
    assert_eq!(h.meta("error_code"), None);
}

#[test]
fn an_unqualified_function_is_labelled_latest() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    assert_eq!(
        h.recorded(FunctionStat::Invocations, "moto|echo|$LATEST"),
        [1]
    );
    assert_eq!(h.meta("qualifier"), Some("$LATEST"));
}

#[test]
fn function_errors_are_counted_by_type() {
    for (kind, label) in [
        ("Handled", "Handled"),
        ("Unhandled", "Unhandled"),
        ("Whatever", "other"),
    ] {
        let mut f = filter();
        let mut h = host("echo", &get_headers());
        f.on_request_headers(&mut h, true);
        respond(
            &mut f,
            &mut h,
            &[(":status", "200"), ("x-amz-function-error", kind)],
            b"{}",
        );
        let labels = format!("moto|echo|$LATEST|{label}");
        assert_eq!(h.recorded(FunctionStat::FunctionErrors, &labels), [1]);
        assert_eq!(h.meta("function_error"), Some(label));
        assert_eq!(h.meta("error_code"), Some("function_error"));
    }
}

#[test]
fn a_malformed_unwrap_result_is_a_function_error_of_its_own_type() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = apigw_route(RequestFormat::ApigwV1, ResponseFormat::Unwrap);
    f.on_request_headers(&mut h, true);
    respond(&mut f, &mut h, &[(":status", "200")], b"[1,2,3]");
    assert_eq!(
        h.recorded(FunctionStat::FunctionErrors, "moto|echo|$LATEST|malformed"),
        [1]
    );
    assert_eq!(h.meta("error_code"), Some("malformed_function_response"));
}

#[test]
fn api_errors_are_counted_by_class_with_the_mapped_code_in_metadata() {
    for (status, class, code) in [
        ("429", "throttled", "throttled"),
        ("403", "access_denied", "lambda_access_denied"),
        ("404", "not_found", "function_not_found"),
        ("502", "server_error", "lambda_bad_gateway"),
        ("409", "other", "function_not_ready"),
    ] {
        let mut f = filter();
        let mut h = host("echo", &get_headers());
        h.code_details = Some("via_upstream".into());
        f.on_request_headers(&mut h, true);
        respond(
            &mut f,
            &mut h,
            &[(":status", status), ("x-amzn-requestid", "r-1")],
            b"{\"message\":\"no\"}",
        );
        let labels = format!("moto|echo|$LATEST|{class}");
        assert_eq!(
            h.recorded(FunctionStat::ApiErrors, &labels),
            [1],
            "{status}"
        );
        assert_eq!(h.meta("error_code"), Some(code), "{status}");
        assert_eq!(h.meta("request_id"), Some("r-1"));
    }
}

#[test]
fn local_rejections_carry_the_reason_and_never_a_client_chosen_name() {
    use crate::config::{FunctionRef, PathTemplate};
    let mut f = filter();
    let mut h = host("unused", &[(":method", "GET"), (":path", "/lambda/nosuch")]);
    h.route = Some(Arc::new(RouteTarget {
        upstream: "moto".into(),
        function: FunctionRef::FromPath(PathTemplate::parse("/lambda/{function}").unwrap()),
        overrides: InvokeOverrides::default(),
    }));
    f.on_request_headers(&mut h, true);
    assert_eq!(
        h.recorded(FunctionStat::LocalRejections, "moto|*|*|unknown_function"),
        [1]
    );
    assert_eq!(h.meta("error_code"), Some("unknown_function"));
    // A known function's rejection is labelled with it.
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.secrets.clear();
    f.on_request_headers(&mut h, true);
    assert_eq!(
        h.recorded(
            FunctionStat::LocalRejections,
            "moto|echo|$LATEST|credentials_unavailable"
        ),
        [1]
    );
}

#[test]
fn the_switch_folds_functions_into_their_upstream_or_turns_the_stats_off() {
    let mut f = filter_with(r#""function_stats":"per_upstream","#);
    let mut h = host("echo-live", &get_headers());
    f.on_request_headers(&mut h, true);
    assert_eq!(h.recorded(FunctionStat::Invocations, "moto|*|*"), [1]);
    // The metadata still names the function.
    assert_eq!(h.meta("function"), Some("echo"));

    let mut f = filter_with(r#""function_stats":"off","#);
    let mut h = host("echo-live", &get_headers());
    f.on_request_headers(&mut h, true);
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("x-amz-function-error", "Handled")],
        b"{}",
    );
    assert!(h.recorded.is_empty(), "{:?}", h.recorded);
    assert_eq!(h.count(Counter::Invocations), 1);
    assert_eq!(h.count(Counter::FunctionErrors), 1);
}

#[test]
fn a_bad_switch_value_is_refused_naming_the_field() {
    let config = CONFIG.replace(
        r#""secret_ref":"creds","#,
        r#""secret_ref":"creds","function_stats":"sometimes","#,
    );
    let e = FilterConfig::from_json(config.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("spec.function_stats"), "{e}");
}

fn tail_response(report: &str) -> FakeHost {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = tail_route("echo");
    f.on_request_headers(&mut h, true);
    let log = b64(report);
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("x-amz-log-result", &log)],
        b"{}",
    );
    h
}

#[test]
fn a_cold_start_is_counted_once_with_its_init_and_billed_durations() {
    let h = tail_response(COLD_REPORT);
    let fn_labels = "moto|echo|$LATEST";
    assert_eq!(h.recorded(FunctionStat::ColdStarts, fn_labels), [1]);
    assert_eq!(h.recorded(FunctionStat::InitDurationMs, fn_labels), [156]);
    assert_eq!(h.recorded(FunctionStat::BilledDurationMs, fn_labels), [160]);
    assert_eq!(h.meta("cold_start"), Some("true"));
    assert_eq!(h.meta("init_duration_ms"), Some("155.6"));
    assert_eq!(h.meta("billed_duration_ms"), Some("160"));
    assert_eq!(h.meta("duration_ms"), Some("3.1"));
    assert_eq!(h.meta("memory_size_mb"), Some("128"));
    assert_eq!(h.meta("max_memory_used_mb"), Some("60"));

    let h = tail_response(WARM_REPORT);
    assert!(h.recorded(FunctionStat::ColdStarts, fn_labels).is_empty());
    assert_eq!(h.recorded(FunctionStat::BilledDurationMs, fn_labels), [4]);
    assert_eq!(h.meta("cold_start"), Some("false"));
    assert_eq!(h.meta("init_duration_ms"), None);
}

#[test]
fn a_truncated_report_is_ignored() {
    let cut = &COLD_REPORT[..COLD_REPORT.find("Init Dur").unwrap() + 8];
    let h = tail_response(cut);
    assert!(
        h.recorded(FunctionStat::ColdStarts, "moto|echo|$LATEST")
            .is_empty()
    );
    assert!(
        h.recorded(FunctionStat::BilledDurationMs, "moto|echo|$LATEST")
            .is_empty()
    );
    assert_eq!(h.meta("cold_start"), None);
    assert_eq!(h.meta("log_result"), Some(cut));
}

#[test]
fn without_log_type_tail_no_report_is_read() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    let log = b64(COLD_REPORT);
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("x-amz-log-result", &log)],
        b"{}",
    );
    assert!(
        h.recorded(FunctionStat::ColdStarts, "moto|echo|$LATEST")
            .is_empty()
    );
    assert_eq!(h.meta("cold_start"), None);
    assert_eq!(h.meta("log_result"), None);
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn traceparent_becomes_an_unsigned_xray_header_and_the_clients_never_passes() {
    let mut f = filter_with(r#""trace_propagation":true,"#);
    let mut headers = get_headers();
    headers.push(("traceparent", TRACEPARENT));
    headers.push(("x-amzn-trace-id", "Root=1-client-chosen"));
    let mut h = host("echo", &headers);
    f.on_request_headers(&mut h, true);
    let sent: Vec<_> = h
        .request_headers
        .iter()
        .filter(|(k, _)| k == "x-amzn-trace-id")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        sent,
        ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"]
    );
    let auth = h.request("authorization").unwrap();
    assert!(!auth.contains("x-amzn-trace-id"), "{auth}");

    // Without a traceparent, Envoy's request id gives the root.
    let mut f = filter_with(r#""trace_propagation":true,"#);
    let mut headers = get_headers();
    headers.push(("x-request-id", "6f8c1a52-1d0c-4b0c-9d8e-0123456789ab"));
    let mut h = host("echo", &headers);
    f.on_request_headers(&mut h, true);
    let id = h.request("x-amzn-trace-id").unwrap();
    assert!(
        id.starts_with("Root=1-6f8c1a52-1d0c4b0c9d8e0123456789ab;Parent="),
        "{id}"
    );
}

#[test]
fn without_the_switch_no_trace_header_is_sent_at_all() {
    let mut f = filter();
    let mut headers = get_headers();
    headers.push(("traceparent", TRACEPARENT));
    headers.push(("x-amzn-trace-id", "Root=1-client-chosen"));
    let mut h = host("echo", &headers);
    f.on_request_headers(&mut h, true);
    assert_eq!(h.request("x-amzn-trace-id"), None);
}

#[test]
fn a_discovered_function_has_one_label_set_of_its_own() {
    use crate::config::{FunctionRef, PathTemplate};
    use crate::discovery::DiscoveredSet;
    let config = FilterConfig::from_json(
        br#"{"name":"acct","spec":{"region":"us-east-1","secret_ref":"creds",
             "discovery":{"enabled":true,"cluster":"lambda"}}}"#,
    )
    .unwrap();
    let shared = Arc::new(SharedConfig::new(config));
    shared.discovered["acct"].publish(
        DiscoveredSet::from_names(["billing", "billing:live"]),
        std::time::SystemTime::now(),
    );
    let mut h = FakeHost::default();
    for path in [
        "/lambda/billing%3Alive",
        "/lambda/billing%3Alive",
        "/lambda/billing",
    ] {
        let mut one = host("unused", &[(":method", "GET"), (":path", path)]);
        one.route = Some(Arc::new(RouteTarget {
            upstream: "acct".into(),
            function: FunctionRef::FromPath(PathTemplate::parse("/lambda/{function}").unwrap()),
            overrides: InvokeOverrides::default(),
        }));
        LambdaFilter::new(Arc::clone(&shared)).on_request_headers(&mut one, true);
        assert!(one.reply.is_none(), "{path}");
        h.recorded.extend(one.recorded);
    }
    assert_eq!(
        h.recorded(FunctionStat::Invocations, "acct|billing|live"),
        [1, 1]
    );
    assert_eq!(
        h.recorded(FunctionStat::Invocations, "acct|billing|$LATEST"),
        [1]
    );
}

#[test]
fn access_log_metadata_can_be_turned_off_log_result_aside() {
    let mut f = filter_with(r#""access_log_metadata":false,"log_type":"tail","#);
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    let log = b64(COLD_REPORT);
    respond(
        &mut f,
        &mut h,
        &[
            (":status", "200"),
            ("x-amz-log-result", &log),
            ("x-amzn-requestid", "r-1"),
            ("x-amz-function-error", "Handled"),
        ],
        b"{}",
    );
    let keys: Vec<_> = h.metadata.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(keys, ["log_result"]);
    // The stats are not affected.
    assert_eq!(
        h.recorded(FunctionStat::ColdStarts, "moto|echo|$LATEST"),
        [1]
    );
}
