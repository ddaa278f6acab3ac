//! Function names and qualifiers as Lambda's `Invoke` API accepts them.
//!
//! `FunctionName` accepts the three forms Lambda documents, each optionally followed by
//! `:<qualifier>`: a bare name (`my-fn`), a partial ARN (`123456789012:function:my-fn`) and a
//! full ARN (`arn:aws:lambda:us-east-1:123456789012:function:my-fn`).

use std::fmt;

/// Why a function name or qualifier was refused; the text is safe to show (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated `FunctionName` for the Invoke API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionName {
    raw: String,
    region: Option<String>,
    qualifier: Option<Qualifier>,
}

/// A validated qualifier: `$LATEST`, a version number or an alias name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualifier(String);

const MAX_FUNCTION_NAME_LEN: usize = 170; // Invoke's FunctionName length limit
const MAX_SHORT_NAME_LEN: usize = 64; // a function's own name
const MAX_QUALIFIER_LEN: usize = 128;

impl Qualifier {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(NameError("must not be empty".into()));
        }
        if value.len() > MAX_QUALIFIER_LEN {
            return Err(NameError(format!(
                "'{value}' is longer than {MAX_QUALIFIER_LEN} characters"
            )));
        }
        let ok = value == "$LATEST"
            || value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(NameError(format!(
                "'{value}' is not $LATEST, a version number or an alias name ([A-Za-z0-9_-])"
            )));
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
            return Err(NameError("must not be empty".into()));
        }
        if value.len() > MAX_FUNCTION_NAME_LEN {
            return Err(NameError(format!(
                "'{value}' is longer than {MAX_FUNCTION_NAME_LEN} characters"
            )));
        }
        let parts: Vec<&str> = value.split(':').collect();
        let (name, region, account, qualifier) = match parts.as_slice() {
            [name] => (*name, None, None, None),
            [name, q] => (*name, None, None, Some(*q)),
            [acct, "function", name] => (*name, None, Some(*acct), None),
            [acct, "function", name, q] => (*name, None, Some(*acct), Some(*q)),
            ["arn", partition, "lambda", region, acct, "function", name] => {
                check_partition(partition, region)
                    .map_err(|e| NameError(format!("'{value}': {e}")))?;
                (*name, Some(*region), Some(*acct), None)
            }
            ["arn", partition, "lambda", region, acct, "function", name, q] => {
                check_partition(partition, region)
                    .map_err(|e| NameError(format!("'{value}': {e}")))?;
                (*name, Some(*region), Some(*acct), Some(*q))
            }
            _ => {
                return Err(NameError(format!(
                    "'{value}' is not a function name, a partial ARN \
                     (ACCOUNT:function:NAME) or a full ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
                )))
            }
        };
        check_short_name(name).map_err(|e| NameError(format!("'{value}': {e}")))?;
        if let Some(acct) = account {
            if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NameError(format!(
                    "'{value}': account id '{acct}' is not 12 digits"
                )));
            }
        }
        if let Some(region) = region {
            check_region(region).map_err(|e| NameError(format!("'{value}': {e}")))?;
        }
        let qualifier = qualifier
            .map(Qualifier::parse)
            .transpose()
            .map_err(|e| NameError(format!("'{value}': qualifier {e}")))?;
        Ok(Self {
            raw: value.to_owned(),
            region: region.map(str::to_owned),
            qualifier,
        })
    }

    /// The name exactly as configured (what goes, percent-encoded, into the Invoke path).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The region of a full ARN, if the name is one.
    pub fn arn_region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// A qualifier written into the name itself (`my-fn:live`).
    pub fn embedded_qualifier(&self) -> Option<&Qualifier> {
        self.qualifier.as_ref()
    }
}

/// An AWS partition: its ARN name and the DNS suffix of its service endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub id: &'static str,
    pub dns_suffix: &'static str,
    /// The start of every region code in it (`aws` takes the regions no other one claims).
    region_prefix: &'static str,
}

/// The partitions of the AWS SDKs' `partitions.json`. Longer prefixes first: `us-isob-` must
/// not be taken for `us-iso-`.
const PARTITIONS: [Partition; 8] = [
    Partition {
        id: "aws-us-gov",
        dns_suffix: "amazonaws.com",
        region_prefix: "us-gov-",
    },
    Partition {
        id: "aws-iso-b",
        dns_suffix: "sc2s.sgov.gov",
        region_prefix: "us-isob-",
    },
    Partition {
        id: "aws-iso-f",
        dns_suffix: "csp.hci.ic.gov",
        region_prefix: "us-isof-",
    },
    Partition {
        id: "aws-iso",
        dns_suffix: "c2s.ic.gov",
        region_prefix: "us-iso-",
    },
    Partition {
        id: "aws-iso-e",
        dns_suffix: "cloud.adc-e.uk",
        region_prefix: "eu-isoe-",
    },
    Partition {
        id: "aws-eusc",
        dns_suffix: "amazonaws.eu",
        region_prefix: "eusc-",
    },
    Partition {
        id: "aws-cn",
        dns_suffix: "amazonaws.com.cn",
        region_prefix: "cn-",
    },
    Partition {
        id: "aws",
        dns_suffix: "amazonaws.com",
        region_prefix: "",
    },
];

/// The partition a (well-formed) region code belongs to; unknown prefixes are `aws`'s, as
/// in the AWS SDKs.
pub fn partition_of(region: &str) -> &'static Partition {
    PARTITIONS
        .iter()
        .find(|p| region.starts_with(p.region_prefix))
        .unwrap_or(&PARTITIONS[PARTITIONS.len() - 1])
}

fn check_partition(partition: &str, region: &str) -> Result<(), NameError> {
    if !PARTITIONS.iter().any(|p| p.id == partition) {
        let mut known: Vec<&str> = PARTITIONS.iter().map(|p| p.id).collect();
        known.sort_unstable();
        return Err(NameError(format!(
            "ARN partition '{partition}' is not one of {}",
            known.join(", ")
        )));
    }
    check_region(region)?;
    let expected = partition_of(region).id;
    if partition != expected {
        return Err(NameError(format!(
            "ARN partition '{partition}' does not match region '{region}' (which is in '{expected}')"
        )));
    }
    Ok(())
}

fn check_short_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_SHORT_NAME_LEN {
        return Err(NameError(format!(
            "the function's own name must have 1 to {MAX_SHORT_NAME_LEN} characters"
        )));
    }
    if name == "." || name == ".." {
        // Not a name a path segment can carry: HTTP clients and SigV4 normalize it away.
        return Err(NameError(format!(
            "function name '{name}' is not a valid name"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NameError(format!(
            "function name '{name}' may only contain letters, digits, '-', '_' and '.'"
        )));
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

/// Region codes look like `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`,
/// `eusc-de-east-1`.
pub fn check_region(region: &str) -> Result<(), NameError> {
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 3
        && (parts[0].len() == 2 || parts[0] == "eusc")
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if well_formed {
        Ok(())
    } else {
        Err(NameError(format!(
            "'{region}' is not an AWS region code such as us-east-1"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let err = FunctionName::parse(bad).unwrap_err().0;
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(FunctionName::parse(&"f".repeat(65)).is_err());
        assert!(FunctionName::parse(&"f".repeat(171)).is_err());
    }

    #[test]
    fn full_arn_exposes_region_and_qualifier() {
        let f =
            FunctionName::parse("arn:aws:lambda:eu-west-1:123456789012:function:f:live").unwrap();
        assert_eq!(f.arn_region(), Some("eu-west-1"));
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
            let err = FunctionName::parse(bad).unwrap_err().0;
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

    #[test]
    fn region_rules() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "eusc-de-east-1",
        ] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "useast1", "us--1", "us-east-x"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }
}
