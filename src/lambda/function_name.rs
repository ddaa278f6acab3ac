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
                check_partition(partition)?;
                (*name, Some(*region), Some(*acct), None)
            }
            ["arn", partition, "lambda", region, acct, "function", name, q] => {
                check_partition(partition)?;
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

fn check_partition(partition: &str) -> Result<(), NameError> {
    let ok = partition.starts_with("aws")
        && partition[3..]
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError(format!(
            "ARN partition '{partition}' is not aws, aws-cn, aws-us-gov …"
        )))
    }
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

/// Region codes look like `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
pub fn check_region(region: &str) -> Result<(), NameError> {
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts[0].len() == 2
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
    fn region_rules() {
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1"] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "useast1", "us--1", "us-east-x"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }
}
