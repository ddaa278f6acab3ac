//! Query strings as events carry them.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

/// `(key, value)` pairs in order; `decode` percent-decodes both (API Gateway does, ALB does not).
pub fn pairs(raw: &str, decode: bool) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            if decode {
                (
                    percent_decode_str(k).decode_utf8_lossy().into_owned(),
                    percent_decode_str(v).decode_utf8_lossy().into_owned(),
                )
            } else {
                (k.to_owned(), v.to_owned())
            }
        })
        .collect()
}

/// Repeated keys joined with commas (HTTP API 2.0).
pub fn joined(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        out.entry(k.clone())
            .and_modify(|e| {
                e.push(',');
                e.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    out
}

/// The last value of repeated keys (REST API and ALB single-value maps).
pub fn last(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

/// Every value of each key (the `multiValue…` maps).
pub fn multi(pairs: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        out.entry(k.clone()).or_default().push(v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_repeats() {
        let p = pairs("a=1&a=2&b=x%20y&flag&=e", true);
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
                ("b".into(), "x y".into()),
                ("flag".into(), "".into()),
                ("".into(), "e".into())
            ]
        );
        assert_eq!(joined(&p)["a"], "1,2");
        assert_eq!(last(&p)["a"], "2");
        assert_eq!(multi(&p)["a"], vec!["1", "2"]);
        assert_eq!(pairs("b=x%20y", false)[0].1, "x%20y");
    }
}
