use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::json;

use super::*;
use crate::config::Glob;
use crate::discovery::lambda_api::PAGE_SIZE;

/// An in-memory account answering the three listings like Lambda does: `PAGE_SIZE` per page,
/// an opaque `NextMarker` (here with `+`, `/` and `=`, so encoding is exercised), `null` on the
/// last page, 404 for an unknown function.
#[derive(Default)]
struct FakeAccount {
    /// name → (aliases, published versions)
    functions: BTreeMap<String, (Vec<String>, Vec<String>)>,
    log: Vec<String>,
}

impl FakeAccount {
    fn with_functions(names: impl IntoIterator<Item = String>) -> Self {
        let mut a = Self::default();
        for n in names {
            a.functions.insert(n, Default::default());
        }
        a
    }

    fn marker(offset: usize) -> String {
        format!("v1+off/{offset}==")
    }

    fn page(&self, key: &str, items: Vec<serde_json::Value>, marker: Option<&str>) -> Vec<u8> {
        let start = match marker {
            None => 0,
            Some(m) => m
                .strip_prefix("v1+off/")
                .and_then(|m| m.strip_suffix("=="))
                .and_then(|m| m.parse().ok())
                .expect("marker the fake issued"),
        };
        let end = (start + PAGE_SIZE as usize).min(items.len());
        let next = (end < items.len()).then(|| Self::marker(end));
        let mut page = serde_json::Map::new();
        page.insert(key.into(), json!(items[start..end]));
        page.insert("NextMarker".into(), json!(next));
        serde_json::to_vec(&page).unwrap()
    }

    fn answer(&mut self, req: &ApiRequest) -> (u16, Vec<u8>) {
        self.log.push(req.path_and_query.clone());
        let (path, query) = req.path_and_query.split_once('?').unwrap();
        assert!(query.starts_with("MaxItems=50"), "{query}");
        let marker = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("Marker="))
            .map(|m| percent_decode_str(m).decode_utf8().unwrap().into_owned());
        let rest = path.strip_prefix("/2015-03-31/functions/").unwrap();
        let not_found = (
            404,
            br#"{"Type":"User","Message":"Function not found"}"#.to_vec(),
        );
        if rest.is_empty() {
            let items = self
                .functions
                .keys()
                .map(|n| {
                    json!({
                        "FunctionName": n,
                        "FunctionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{n}"),
                        "Runtime": "python3.12", "Version": "$LATEST", "PackageType": "Zip"
                    })
                })
                .collect();
            return (200, self.page("Functions", items, marker.as_deref()));
        }
        let (name, what) = rest.split_once('/').unwrap();
        let Some((aliases, versions)) = self.functions.get(name) else {
            return not_found;
        };
        let body = match what {
            "aliases" => {
                let items = aliases
                    .iter()
                    .map(|a| json!({"Name": a, "FunctionVersion": "1", "AliasArn": "x"}))
                    .collect();
                self.page("Aliases", items, marker.as_deref())
            }
            "versions" => {
                let items = std::iter::once("$LATEST".to_string())
                    .chain(versions.iter().cloned())
                    .map(|v| json!({"FunctionName": name, "Version": v}))
                    .collect();
                self.page("Versions", items, marker.as_deref())
            }
            other => panic!("unexpected path {other}"),
        };
        (200, body)
    }
}

fn settings(aliases: bool, versions: bool) -> DiscoverySettings {
    DiscoverySettings {
        enabled: true,
        aliases,
        versions,
        ..Default::default()
    }
}

/// Runs a refresh against the fake to its end.
fn run(account: &mut FakeAccount, s: &DiscoverySettings) -> (Refresh, Result<(), RefreshError>) {
    let mut r = Refresh::new(s);
    while let Some(req) = r.next_request() {
        let (status, body) = account.answer(&req);
        if let Err(e) = r.on_response(status, &body) {
            assert!(
                r.next_request().is_none(),
                "a failed refresh sends nothing more"
            );
            return (r, Err(e));
        }
    }
    (r, Ok(()))
}

fn names(set: &DiscoveredSet) -> Vec<&str> {
    set.iter().collect()
}

#[test]
fn one_page_account() {
    let mut a = FakeAccount::with_functions(["b".into(), "a".into()]);
    let (r, res) = run(&mut a, &settings(false, false));
    res.unwrap();
    assert_eq!(r.requests(), 1);
    assert_eq!(a.log, ["/2015-03-31/functions/?MaxItems=50"]);
    assert_eq!(names(&r.finish().unwrap()), ["a", "b"]);
}

#[test]
fn empty_account_is_a_successful_empty_set() {
    let mut a = FakeAccount::default();
    let (r, res) = run(&mut a, &settings(true, true));
    res.unwrap();
    assert!(r.finish().unwrap().is_empty());
}

#[test]
fn follows_next_marker_to_the_last_page() {
    let mut a = FakeAccount::with_functions((0..120).map(|i| format!("fn-{i:03}")));
    let (r, res) = run(&mut a, &settings(false, false));
    res.unwrap();
    assert_eq!(
        a.log,
        [
            "/2015-03-31/functions/?MaxItems=50",
            "/2015-03-31/functions/?MaxItems=50&Marker=v1%2Boff%2F50%3D%3D",
            "/2015-03-31/functions/?MaxItems=50&Marker=v1%2Boff%2F100%3D%3D",
        ]
    );
    let set = r.finish().unwrap();
    assert_eq!(set.len(), 120);
    assert!(set.contains("fn-000") && set.contains("fn-119"));
}

#[test]
fn exactly_full_last_page_ends_on_null_marker() {
    let mut a = FakeAccount::with_functions((0..100).map(|i| format!("f{i}")));
    let (r, res) = run(&mut a, &settings(false, false));
    res.unwrap();
    assert_eq!(r.requests(), 2);
    assert_eq!(r.finish().unwrap().len(), 100);
}

#[test]
fn next_request_is_stable_until_answered() {
    let r = Refresh::new(&settings(false, false));
    assert_eq!(r.next_request(), r.next_request());
    assert!(!r.is_over());
}

#[test]
fn repeated_marker_fails_the_refresh() {
    let mut r = Refresh::new(&settings(false, false));
    let page =
        |m: &str| format!(r#"{{"Functions":[{{"FunctionName":"f{m}"}}],"NextMarker":"{m}"}}"#);
    r.on_response(200, page("A").as_bytes()).unwrap();
    r.on_response(200, page("B").as_bytes()).unwrap();
    assert!(
        r.next_request()
            .unwrap()
            .path_and_query
            .ends_with("Marker=B")
    );
    let e = r.on_response(200, page("A").as_bytes()).unwrap_err();
    assert_eq!(
        e,
        RefreshError::MarkerLoop {
            call: ApiCall::ListFunctions,
            pages: 3
        }
    );
    assert_eq!(e.kind(), FailureKind::BadResponse);
    assert!(r.is_over());
    assert_eq!(r.next_request(), None);
    assert_eq!(r.on_response(200, b"{}"), Err(RefreshError::NotWaiting));
    assert_eq!(r.finish().unwrap_err(), e, "no partial set");
}

#[test]
fn page_cap_fails_the_refresh() {
    let limits = Limits {
        max_pages_per_listing: 3,
    };
    let mut r = Refresh::with_limits(&settings(false, false), limits);
    for i in 0..2 {
        let body = format!(r#"{{"Functions":[],"NextMarker":"m{i}"}}"#);
        r.on_response(200, body.as_bytes()).unwrap();
    }
    let e = r
        .on_response(200, br#"{"Functions":[],"NextMarker":"m2"}"#)
        .unwrap_err();
    assert!(
        matches!(e, RefreshError::TooManyPages { limit: 3, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("still paging after 3 pages"));
}

#[test]
fn aliases_and_versions_per_function() {
    let mut a = FakeAccount::default();
    a.functions.insert(
        "orders".into(),
        (
            vec!["LIVE".into(), "BLUE".into()],
            vec!["1".into(), "2".into()],
        ),
    );
    a.functions
        .insert("billing".into(), (vec![], vec!["7".into()]));
    let (r, res) = run(&mut a, &settings(true, true));
    res.unwrap();
    assert_eq!(
        a.log,
        [
            "/2015-03-31/functions/?MaxItems=50",
            "/2015-03-31/functions/billing/aliases?MaxItems=50",
            "/2015-03-31/functions/billing/versions?MaxItems=50",
            "/2015-03-31/functions/orders/aliases?MaxItems=50",
            "/2015-03-31/functions/orders/versions?MaxItems=50",
        ]
    );
    assert_eq!(
        names(&r.finish().unwrap()),
        [
            "billing",
            "billing:7",
            "orders",
            "orders:1",
            "orders:2",
            "orders:BLUE",
            "orders:LIVE"
        ]
    );
}

#[test]
fn aliases_only_and_versions_only() {
    let mut a = FakeAccount::default();
    a.functions
        .insert("f".into(), (vec!["live".into()], vec!["3".into()]));
    let (r, _) = run(&mut a, &settings(true, false));
    assert_eq!(names(&r.finish().unwrap()), ["f", "f:live"]);
    let (r, _) = run(&mut a, &settings(false, true));
    assert_eq!(names(&r.finish().unwrap()), ["f", "f:3"]);
}

#[test]
fn alias_listings_paginate_too() {
    let mut a = FakeAccount::default();
    let aliases: Vec<String> = (0..75).map(|i| format!("a{i}")).collect();
    a.functions.insert("f".into(), (aliases, vec![]));
    let (r, res) = run(&mut a, &settings(true, false));
    res.unwrap();
    assert_eq!(a.log.len(), 3);
    assert_eq!(
        a.log[2],
        "/2015-03-31/functions/f/aliases?MaxItems=50&Marker=v1%2Boff%2F50%3D%3D"
    );
    assert_eq!(r.finish().unwrap().len(), 76);
}

#[test]
fn include_and_exclude_apply_to_the_function_name_before_any_alias_call() {
    let mut a = FakeAccount::default();
    for n in ["orders-api", "orders-test", "billing", "shipping"] {
        a.functions.insert(n.into(), (vec!["live".into()], vec![]));
    }
    let mut s = settings(true, false);
    s.filter = NameFilter {
        include: Some(vec![
            Glob::parse("orders-*").unwrap(),
            Glob::parse("billing").unwrap(),
        ]),
        exclude: vec![Glob::parse("*-test").unwrap()],
    };
    let (r, res) = run(&mut a, &s);
    res.unwrap();
    assert_eq!(
        names(&r.finish().unwrap()),
        ["billing", "billing:live", "orders-api", "orders-api:live"]
    );
    assert!(
        !a.log
            .iter()
            .any(|p| p.contains("shipping") || p.contains("orders-test"))
    );
}

#[test]
fn a_failed_step_fails_the_whole_refresh() {
    let mut r = Refresh::new(&settings(true, false));
    r.on_response(
        200,
        br#"{"Functions":[{"FunctionName":"a"},{"FunctionName":"b"}]}"#,
    )
    .unwrap();
    r.on_response(200, br#"{"Aliases":[{"Name":"live"}]}"#)
        .unwrap();
    assert_eq!(
        r.next_request().unwrap().call,
        ApiCall::ListAliases("b".into())
    );
    let e = r
        .on_response(
            403,
            br#"{"Type":"User","Message":"User is not authorized to perform: lambda:ListAliases"}"#,
        )
        .unwrap_err();
    assert_eq!(e.kind(), FailureKind::Auth);
    assert_eq!(
        e.to_string(),
        "ListAliases(b) answered 403: User is not authorized to perform: lambda:ListAliases"
    );
    assert!(r.finish().is_err());
}

/// Discovery reads AWS's errors with the request path's reader: the error's name, the first
/// line, keys and tokens redacted.
#[test]
fn failure_details_are_read_like_the_request_paths() {
    let mut r = Refresh::new(&settings(false, false));
    let body = serde_json::json!({
        "__type": "InvalidSignatureException",
        "message": "The request signature we calculated does not match the signature you provided.\n\n\
                    The Canonical String for this request should have been\n'GET\n/2015-03-31/functions/\n\
                    MaxItems=50\nhost:lambda.us-east-1.amazonaws.com\n\
                    x-amz-security-token:IQoJb3JpZ2luX2VjEHAaCXVzLWVhc3QtMSJHMEUCIQDkR2Pq8vJ0dW5Wm7W0Xy\n'"
    });
    let e = r.on_response(403, body.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ListFunctions answered 403: InvalidSignatureException: The request signature we \
         calculated does not match the signature you provided."
    );
    let mut r = Refresh::new(&settings(false, false));
    let e = r
        .on_response(
            403,
            br#"{"message":"Credential=AKIAIOSFODNN7EXAMPLE/20261201/us-east-1/lambda/aws4_request is not valid"}"#,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ListFunctions answered 403: Credential=[redacted] is not valid"
    );
}

#[test]
fn failure_kinds_by_status() {
    for (status, kind) in [
        (403, FailureKind::Auth),
        (429, FailureKind::Throttled),
        (500, FailureKind::Server),
        (502, FailureKind::Server),
        (404, FailureKind::OtherStatus),
        (400, FailureKind::OtherStatus),
    ] {
        let mut r = Refresh::new(&settings(false, false));
        let e = r.on_response(status, b"").unwrap_err();
        assert_eq!(e.kind(), kind, "{status}");
        assert!(matches!(e, RefreshError::Status { detail: None, .. }));
    }
}

#[test]
fn bad_page_is_an_error() {
    let mut r = Refresh::new(&settings(false, false));
    let e = r.on_response(200, b"<html>oops</html>").unwrap_err();
    assert!(matches!(
        e,
        RefreshError::BadPage {
            call: ApiCall::ListFunctions,
            error: PageError::NotJson(_)
        }
    ));
    assert_eq!(e.kind(), FailureKind::BadResponse);
    let mut r = Refresh::new(&settings(false, false));
    let e = r
        .on_response(200, br#"{"Message":"Rate exceeded"}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("ListFunctions: reply is not the expected page"),
        "{e}"
    );
}

#[test]
fn function_deleted_mid_refresh_is_left_out() {
    let mut a = FakeAccount::default();
    for n in ["a", "gone", "z"] {
        a.functions
            .insert(n.into(), (vec!["live".into()], vec!["1".into()]));
    }
    let mut r = Refresh::new(&settings(true, true));
    let mut deleted = false;
    while let Some(req) = r.next_request() {
        if !deleted && req.call.function() == Some("gone") {
            // Deleted after ListFunctions listed it (between its aliases and versions, too).
            let (s, b) = a.answer(&req);
            r.on_response(s, &b).unwrap();
            a.functions.remove("gone");
            deleted = true;
            continue;
        }
        let (s, b) = a.answer(&req);
        r.on_response(s, &b).unwrap();
    }
    assert_eq!(r.vanished(), 1);
    assert_eq!(
        names(&r.finish().unwrap()),
        ["a", "a:1", "a:live", "z", "z:1", "z:live"]
    );
}

#[test]
fn transport_failure_ends_the_refresh() {
    let mut r = Refresh::new(&settings(false, false));
    let e = r.on_transport_failure("reset");
    assert_eq!(e.kind(), FailureKind::Transport);
    assert_eq!(e.to_string(), "ListFunctions: reset");
    assert!(r.is_over());
    assert_eq!(r.finish().unwrap_err(), e);
}

#[test]
fn finishing_early_or_answering_late_is_a_caller_bug() {
    let r = Refresh::new(&settings(false, false));
    assert_eq!(r.finish().unwrap_err(), RefreshError::NotWaiting);
    let mut r = Refresh::new(&settings(false, false));
    r.on_response(200, br#"{"Functions":[]}"#).unwrap();
    assert!(r.is_over());
    assert_eq!(r.on_response(200, b"{}"), Err(RefreshError::NotWaiting));
    assert_eq!(r.on_transport_failure("late"), RefreshError::NotWaiting);
    assert!(
        r.finish().is_ok(),
        "a stray late reply does not spoil a finished refresh"
    );
}

#[test]
fn invalid_names_are_skipped_and_counted() {
    let mut r = Refresh::new(&settings(true, true));
    let too_long = "x".repeat(65);
    let page = format!(
        r#"{{"Functions":[{{"FunctionName":"ok"}},{{"FunctionName":"bad/name"}},{{"FunctionName":""}},{{"FunctionName":"{too_long}"}}]}}"#
    );
    r.on_response(200, page.as_bytes()).unwrap();
    r.on_response(
        200,
        br#"{"Aliases":[{"Name":"live"},{"Name":"$LATEST"},{"Name":"a b"}]}"#,
    )
    .unwrap();
    r.on_response(
        200,
        br#"{"Versions":[{"Version":"$LATEST"},{"Version":"4"}]}"#,
    )
    .unwrap();
    assert_eq!(r.skipped_invalid(), 5);
    assert_eq!(names(&r.finish().unwrap()), ["ok", "ok:4", "ok:live"]);
}

#[test]
fn duplicates_across_pages_are_merged() {
    let mut r = Refresh::new(&settings(false, false));
    r.on_response(
        200,
        br#"{"Functions":[{"FunctionName":"a"},{"FunctionName":"b"}],"NextMarker":"1"}"#,
    )
    .unwrap();
    r.on_response(
        200,
        br#"{"Functions":[{"FunctionName":"b"},{"FunctionName":"c"}]}"#,
    )
    .unwrap();
    assert_eq!(names(&r.finish().unwrap()), ["a", "b", "c"]);
}

#[test]
fn a_reusing_refresh_lists_aliases_of_new_functions_only() {
    let mut a = FakeAccount::default();
    a.functions
        .insert("orders".into(), (vec!["live".into()], vec!["1".into()]));
    a.functions
        .insert("gone".into(), (vec!["old".into()], vec![]));
    let s = settings(true, true);
    let (r, res) = run(&mut a, &s);
    res.unwrap();
    let previous = Arc::new(crate::discovery::table::Snapshot {
        set: r.finish().unwrap(),
        refreshed_at: std::time::SystemTime::UNIX_EPOCH,
    });
    assert_eq!(
        names(&previous.set),
        ["gone", "gone:old", "orders", "orders:1", "orders:live"]
    );

    // Changes the light refresh cannot see (aliases of known functions) and ones it must
    // (a new function, a deleted one).
    a.functions.remove("gone");
    a.functions.get_mut("orders").unwrap().0.push("blue".into());
    a.functions
        .insert("billing".into(), (vec!["live".into()], vec![]));
    a.log.clear();
    let mut r = Refresh::reusing(&s, previous);
    while let Some(req) = r.next_request() {
        let (status, body) = a.answer(&req);
        r.on_response(status, &body).unwrap();
    }
    assert_eq!(
        a.log,
        [
            "/2015-03-31/functions/?MaxItems=50",
            "/2015-03-31/functions/billing/aliases?MaxItems=50",
            "/2015-03-31/functions/billing/versions?MaxItems=50",
        ]
    );
    assert_eq!(r.reused(), 1);
    assert_eq!(
        names(&r.finish().unwrap()),
        [
            "billing",
            "billing:live",
            "orders",
            "orders:1",
            "orders:live"
        ]
    );
}

#[test]
fn listed_names_follow_the_invoke_rule_dots_included() {
    // Invoke's FunctionName pattern allows '.' in the function's own name; `.` and `..` alone
    // are path segments that clients and SigV4 normalize away.
    let mut r = Refresh::new(&settings(false, false));
    r.on_response(
        200,
        br#"{"Functions":[{"FunctionName":"orders.v2"},{"FunctionName":"."},{"FunctionName":".."}]}"#,
    )
    .unwrap();
    assert_eq!(r.skipped_invalid(), 2);
    assert_eq!(names(&r.finish().unwrap()), ["orders.v2"]);
}
