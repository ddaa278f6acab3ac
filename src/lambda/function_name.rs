//! Function names and qualifiers as Lambda's `Invoke` API accepts them.
//!
//! `FunctionName` accepts the three forms Lambda documents, each optionally followed by
//! `:<qualifier>`: a bare name (`my-fn`), a partial ARN (`123456789012:function:my-fn`) and a
//! full ARN (`arn:aws:lambda:us-east-1:123456789012:function:my-fn`).

use super::name_error::NameError;
use super::region::{Region, arn_region};

/// A validated `FunctionName` for the Invoke API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionName {
    raw: String,
    region: Option<Region>,
    qualifier: Option<Qualifier>,
}

/// A validated qualifier: `$LATEST`, a version number or an alias name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualifier(String);

const MAX_FUNCTION_NAME_LEN: usize = 170; // Invoke's FunctionName length limit
pub(crate) const MAX_SHORT_NAME_LEN: usize = 64; // a function's own name
const MAX_QUALIFIER_LEN: usize = 128;

impl Qualifier {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(NameError::Empty);
        }
        if value.len() > MAX_QUALIFIER_LEN {
            return Err(NameError::TooLong {
                value: value.to_owned(),
                max: MAX_QUALIFIER_LEN,
            });
        }
        let ok = value == "$LATEST"
            || value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(NameError::NotAQualifier(value.to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FunctionName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(NameError::Empty);
        }
        if value.len() > MAX_FUNCTION_NAME_LEN {
            return Err(NameError::TooLong {
                value: value.to_owned(),
                max: MAX_FUNCTION_NAME_LEN,
            });
        }
        let parts: Vec<&str> = value.split(':').collect();
        let arn_region =
            |partition, region| arn_region(partition, region).map_err(|e| e.within(value));
        let (name, region, account, qualifier) = match parts.as_slice() {
            [name] => (*name, None, None, None),
            [name, q] => (*name, None, None, Some(*q)),
            [acct, "function", name] => (*name, None, Some(*acct), None),
            [acct, "function", name, q] => (*name, None, Some(*acct), Some(*q)),
            ["arn", partition, "lambda", region, acct, "function", name] => (
                *name,
                Some(arn_region(partition, region)?),
                Some(*acct),
                None,
            ),
            [
                "arn",
                partition,
                "lambda",
                region,
                acct,
                "function",
                name,
                q,
            ] => (
                *name,
                Some(arn_region(partition, region)?),
                Some(*acct),
                Some(*q),
            ),
            _ => return Err(NameError::NotAFunctionName(value.to_owned())),
        };
        check_short_name(name).map_err(|e| e.within(value))?;
        if let Some(acct) = account {
            if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NameError::AccountId(acct.to_owned()).within(value));
            }
        }
        let qualifier =
            qualifier
                .map(Qualifier::parse)
                .transpose()
                .map_err(|e| NameError::InQualifier {
                    value: value.to_owned(),
                    part: Box::new(e),
                })?;
        Ok(Self {
            raw: value.to_owned(),
            region,
            qualifier,
        })
    }

    /// The name exactly as configured (what goes, percent-encoded, into the Invoke path).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The region of a full ARN, if the name is one.
    pub fn arn_region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// A qualifier written into the name itself (`my-fn:live`).
    pub fn embedded_qualifier(&self) -> Option<&Qualifier> {
        self.qualifier.as_ref()
    }
}

/// True for a function's own name (what `ListFunctions` returns as `FunctionName`) that
/// `Invoke` accepts: the one rule for configured and discovered names alike.
pub fn is_function_name(name: &str) -> bool {
    check_short_name(name).is_ok()
}

/// Invoke's `FunctionName` pattern (Lambda API reference) allows `[a-zA-Z0-9-_.]` in the
/// function's own name, 1 to 64 characters.
fn check_short_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_SHORT_NAME_LEN {
        return Err(NameError::ShortNameLength);
    }
    if name == "." || name == ".." {
        // Not a name a path segment can carry: HTTP clients and SigV4 normalize it away.
        return Err(NameError::DotSegment(name.to_owned()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NameError::ShortNameCharacters(name.to_owned()));
    }
    Ok(())
}

/// How many characters of a name a reply or log line shows.
pub const MAX_SHOWN_NAME_CHARS: usize = 128;

/// A name as it may be shown in a reply or a log line: at most [`MAX_SHOWN_NAME_CHARS`]
/// characters (then `…`), control characters escaped (`\n`, `\u{1b}`). Needed for names the
/// client chose (a `path_template` segment), which may be any length and any bytes.
pub fn shown_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_SHOWN_NAME_CHARS + 8));
    for (i, c) in name.chars().enumerate() {
        if i == MAX_SHOWN_NAME_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::region::partition_of;

    #[test]
    fn accepts_the_three_documented_forms() {
        for ok in [
            "my-function",
            "my_function.v2",
            "my-function:v1",
            "my-function:$LATEST",
            "123456789012:function:my-function",
            "123456789012:function:my-function:live",
            "arn:aws:lambda:us-west-2:123456789012:function:my-function",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:7",
        ] {
            assert!(FunctionName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_names_with_a_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("my function", "letters"),
            ("a:b:c", "partial ARN"),
            ("12345:function:f", "12 digits"),
            ("arn:aws:lambda:useast1:123456789012:function:f", "region"),
            (
                "arn:gcp:lambda:us-east-1:123456789012:function:f",
                "partition",
            ),
            ("f:bad/qualifier", "qualifier"),
        ] {
            let err = FunctionName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(FunctionName::parse(&"f".repeat(65)).is_err());
        assert!(FunctionName::parse(&"f".repeat(171)).is_err());
    }

    #[test]
    fn full_arn_exposes_region_and_qualifier() {
        let f =
            FunctionName::parse("arn:aws:lambda:eu-west-1:123456789012:function:f:live").unwrap();
        assert_eq!(f.arn_region().map(Region::as_str), Some("eu-west-1"));
        assert_eq!(f.embedded_qualifier().map(Qualifier::as_str), Some("live"));
    }

    #[test]
    fn qualifier_rules() {
        assert!(Qualifier::parse("$LATEST").is_ok());
        assert!(Qualifier::parse("12").is_ok());
        assert!(Qualifier::parse("prod_blue-2").is_ok());
        assert!(Qualifier::parse("").is_err());
        assert!(Qualifier::parse("$latest").is_err());
        assert!(Qualifier::parse("a/b").is_err());
        assert!(Qualifier::parse(&"q".repeat(129)).is_err());
    }

    #[test]
    fn arn_partitions_are_the_real_ones_and_match_the_region() {
        for ok in [
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "arn:aws:lambda:il-central-1:123456789012:function:f",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
            "arn:aws-us-gov:lambda:us-gov-east-1:123456789012:function:f",
            "arn:aws-iso:lambda:us-iso-east-1:123456789012:function:f",
            "arn:aws-iso-b:lambda:us-isob-east-1:123456789012:function:f",
            "arn:aws-iso-e:lambda:eu-isoe-west-1:123456789012:function:f",
            "arn:aws-iso-f:lambda:us-isof-south-1:123456789012:function:f",
            "arn:aws-eusc:lambda:eusc-de-east-1:123456789012:function:f",
        ] {
            assert!(FunctionName::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            (
                "arn:awsx:lambda:us-east-1:123456789012:function:f",
                "not one of",
            ),
            (
                "arn:aws-moon:lambda:us-east-1:123456789012:function:f",
                "not one of",
            ),
            (
                "arn:aws-cn:lambda:us-east-1:123456789012:function:f",
                "does not match",
            ),
            (
                "arn:aws:lambda:cn-north-1:123456789012:function:f",
                "in 'aws-cn'",
            ),
            (
                "arn:aws-iso:lambda:us-isob-east-1:123456789012:function:f",
                "aws-iso-b",
            ),
            (
                "arn:aws:lambda:us-gov-west-1:123456789012:function:f",
                "aws-us-gov",
            ),
        ] {
            let err = FunctionName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert_eq!(
            partition_of("cn-northwest-1").dns_suffix,
            "amazonaws.com.cn"
        );
        assert_eq!(partition_of("eusc-de-east-1").dns_suffix, "amazonaws.eu");
        assert_eq!(partition_of("us-iso-east-1").id, "aws-iso");
        assert_eq!(partition_of("eu-west-1").id, "aws");
    }

    #[test]
    fn shown_names_are_capped_and_escaped() {
        assert_eq!(shown_name("orders"), "orders");
        assert_eq!(shown_name("a\nb\u{1b}c\0"), r"a\nb\u{1b}c\u{0}");
        let long = "é".repeat(500);
        let shown = shown_name(&long);
        assert_eq!(shown.chars().count(), MAX_SHOWN_NAME_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(
            shown_name(&"x".repeat(MAX_SHOWN_NAME_CHARS)).len(),
            MAX_SHOWN_NAME_CHARS
        );
    }
}
