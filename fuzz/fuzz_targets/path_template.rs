//! `path_template` (`/lambda/{function}`): parsing, and taking the function's name from a
//! request path. Input: the template on the first line, a request path on the second.
#![no_main]

use envoy_lambda::config::PathTemplate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, path) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(t) = PathTemplate::parse(template) else {
        return;
    };
    if let Some(name) = t.extract(path) {
        assert!(
            !name.is_empty(),
            "{template} took an empty name from {path:?}"
        );
    }
    // Any plain name put in the placeholder's place comes back out as it was.
    let name: String = path
        .chars()
        .filter(|c| !matches!(c, '/' | '?' | '%'))
        .collect();
    if !name.is_empty() {
        let built = template.replacen("{function}", &name, 1);
        assert_eq!(t.extract(&built), Some(name), "{template} with {built:?}");
    }
});
