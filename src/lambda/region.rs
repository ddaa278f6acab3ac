//! AWS region codes, validated once, and the partitions they belong to.

use std::fmt;

use super::name_error::NameError;

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
pub(crate) const PARTITIONS: [Partition; 8] = [
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

/// A well-formed AWS region code (`us-east-1`, `eu-central-2`, `us-gov-west-1`,
/// `cn-north-1`, `eusc-de-east-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(Box<str>);

impl Region {
    pub fn parse(code: &str) -> Result<Self, NameError> {
        let parts: Vec<&str> = code.split('-').collect();
        let well_formed = parts.len() >= 3
            && (parts[0].len() == 2 || parts[0] == "eusc")
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
            && !parts[parts.len() - 1].is_empty();
        if well_formed {
            Ok(Self(code.into()))
        } else {
            Err(NameError::NotARegion(code.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn partition(&self) -> &'static Partition {
        partition_of(&self.0)
    }
}

/// The region of a full ARN, checked in this order: the partition is a real one, the region
/// is well formed, and it belongs to that partition.
pub(crate) fn arn_region(partition: &str, region: &str) -> Result<Region, NameError> {
    if !PARTITIONS.iter().any(|p| p.id == partition) {
        return Err(NameError::UnknownPartition(partition.to_owned()));
    }
    let region = Region::parse(region)?;
    let expected = region.partition().id;
    if partition != expected {
        return Err(NameError::PartitionMismatch {
            partition: partition.to_owned(),
            region: region.as_str().to_owned(),
            expected,
        });
    }
    Ok(region)
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_rules() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "eusc-de-east-1",
        ] {
            assert_eq!(Region::parse(ok).map(|r| r.to_string()).as_deref(), Ok(ok));
        }
        for bad in ["", "us-east", "US-EAST-1", "useast1", "us--1", "us-east-x"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }
}
