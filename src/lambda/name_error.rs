//! Why a function name, qualifier or region was refused. The texts are safe to show: they
//! quote only what the configuration or the Lambda API itself wrote, never a secret.

use std::fmt;

use super::function_name::MAX_SHORT_NAME_LEN;
use super::region::PARTITIONS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        value: String,
        max: usize,
    },
    /// Not one of the three documented forms (name, partial ARN, full ARN).
    NotAFunctionName(String),
    /// A part of `value` is wrong: `'<value>': <part>`.
    In {
        value: String,
        part: Box<NameError>,
    },
    /// The qualifier written into `value` is wrong: `'<value>': qualifier <part>`.
    InQualifier {
        value: String,
        part: Box<NameError>,
    },
    NotAQualifier(String),
    AccountId(String),
    ShortNameLength,
    /// `.` or `..`: HTTP clients and SigV4 normalize such a path segment away.
    DotSegment(String),
    ShortNameCharacters(String),
    UnknownPartition(String),
    PartitionMismatch {
        partition: String,
        region: String,
        expected: &'static str,
    },
    NotARegion(String),
}

impl NameError {
    pub(crate) fn within(self, value: &str) -> Self {
        Self::In {
            value: value.to_owned(),
            part: Box::new(self),
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("must not be empty"),
            Self::TooLong { value, max } => write!(f, "'{value}' is longer than {max} characters"),
            Self::NotAFunctionName(value) => write!(
                f,
                "'{value}' is not a function name, a partial ARN \
                 (ACCOUNT:function:NAME) or a full ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
            ),
            Self::In { value, part } => write!(f, "'{value}': {part}"),
            Self::InQualifier { value, part } => write!(f, "'{value}': qualifier {part}"),
            Self::NotAQualifier(value) => write!(
                f,
                "'{value}' is not $LATEST, a version number or an alias name ([A-Za-z0-9_-])"
            ),
            Self::AccountId(account) => write!(f, "account id '{account}' is not 12 digits"),
            Self::ShortNameLength => write!(
                f,
                "the function's own name must have 1 to {MAX_SHORT_NAME_LEN} characters"
            ),
            Self::DotSegment(name) => write!(f, "function name '{name}' is not a valid name"),
            Self::ShortNameCharacters(name) => write!(
                f,
                "function name '{name}' may only contain letters, digits, '-', '_' and '.'"
            ),
            Self::UnknownPartition(partition) => {
                let mut known: Vec<&str> = PARTITIONS.iter().map(|p| p.id).collect();
                known.sort_unstable();
                write!(
                    f,
                    "ARN partition '{partition}' is not one of {}",
                    known.join(", ")
                )
            }
            Self::PartitionMismatch {
                partition,
                region,
                expected,
            } => write!(
                f,
                "ARN partition '{partition}' does not match region '{region}' (which is in '{expected}')"
            ),
            Self::NotARegion(region) => {
                write!(f, "'{region}' is not an AWS region code such as us-east-1")
            }
        }
    }
}

impl std::error::Error for NameError {}
