//! The result of one refresh: every invocable name an upstream offers.
//!
//! Names are `function`, `function:alias` and `function:version`, exactly the `FunctionName`
//! forms Lambda's Invoke accepts, so the filter can invoke a looked-up name as it is.
//! Stored as one sorted boxed slice of boxed strings: 16 bytes of index plus the name's own
//! bytes per entry, no hashing state, and lookups are a binary search (≈ 14 comparisons for
//! 10 000 names) that touches nothing but the reader's own cache lines.

/// A sorted, duplicate-free set of invocable names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveredSet {
    names: Box<[Box<str>]>,
}

impl DiscoveredSet {
    /// Sorts and de-duplicates (pagination under concurrent changes may list a name twice).
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let mut names: Vec<Box<str>> = names.into_iter().map(Into::into).collect();
        names.sort_unstable();
        names.dedup();
        Self {
            names: names.into_boxed_slice(),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names
            .binary_search_by(|probe| probe.as_ref().cmp(name))
            .is_ok()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The `function:qualifier` entries of `function`, in sorted order. They are contiguous:
    /// every name with the prefix `function:` sorts between `function:` and the next prefix.
    pub fn qualified_of<'a>(&'a self, function: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("{function}:");
        let start = self.names.partition_point(|n| n.as_ref() < prefix.as_str());
        self.names[start..]
            .iter()
            .map(|n| n.as_ref())
            .take_while(move |n| n.starts_with(&prefix))
    }

    /// In sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| n.as_ref())
    }

    /// Bytes this set owns on the heap: the index slice plus every name's bytes (allocator
    /// rounding not included). For the "memory per discovered function" figure.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[Box<str>]>(&self.names)
            + self.names.iter().map(|n| n.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_deduplicated_and_searchable() {
        let set = DiscoveredSet::from_names(["b", "a:LIVE", "a", "b", "a:1"]);
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "a:1", "a:LIVE", "b"]);
        assert_eq!(set.len(), 4);
        assert!(set.contains("a:LIVE"));
        assert!(set.contains("b"));
        assert!(!set.contains("a:live"));
        assert!(!set.contains("c"));
        assert!(DiscoveredSet::default().is_empty());
        assert!(!DiscoveredSet::default().contains(""));
    }

    #[test]
    fn qualified_entries_of_one_function() {
        let set = DiscoveredSet::from_names(["f", "f-x", "f-x:1", "f:1", "f:live", "f9", "g:1"]);
        assert_eq!(set.qualified_of("f").collect::<Vec<_>>(), ["f:1", "f:live"]);
        assert_eq!(set.qualified_of("f-x").collect::<Vec<_>>(), ["f-x:1"]);
        assert_eq!(set.qualified_of("f9").count(), 0);
        assert_eq!(set.qualified_of("h").count(), 0);
    }

    #[test]
    fn heap_bytes_counts_index_and_names() {
        let set = DiscoveredSet::from_names(["abc", "de"]);
        assert_eq!(set.heap_bytes(), 2 * std::mem::size_of::<Box<str>>() + 5);
    }

    /// glibc malloc's chunk for an `n`-byte request on 64-bit: 8 bytes of header, 16-byte
    /// rounding, 32 bytes minimum.
    fn malloc_chunk(n: usize) -> usize {
        if n == 0 {
            0 // an empty Box<str> does not allocate
        } else {
            ((n + 8).div_ceil(16) * 16).max(32)
        }
    }

    /// "Memory per discovered function": run with `-- --nocapture` to see the figures.
    #[test]
    fn memory_per_discovered_function() {
        // Names shaped like real accounts: team-service-stage, 12–40 characters.
        let teams = [
            "orders",
            "billing",
            "payments",
            "identity",
            "search",
            "notifications",
        ];
        let services = [
            "api",
            "worker",
            "ingest-handler",
            "nightly-report",
            "webhook",
            "cron",
        ];
        let stages = ["dev", "staging", "prod", "eu-prod"];
        let mut names = Vec::new();
        for i in 0..10_000usize {
            names.push(format!(
                "{}-{}-{}-{i}",
                teams[i % teams.len()],
                services[(i / teams.len()) % services.len()],
                stages[(i / 36) % stages.len()]
            ));
        }
        let set = DiscoveredSet::from_names(names);
        let n = set.len();
        assert_eq!(n, 10_000);
        let entry = std::mem::size_of::<Box<str>>();
        let name_bytes: usize = set.iter().map(str::len).sum();
        let malloc_bytes: usize = set.iter().map(|s| malloc_chunk(s.len())).sum();
        let per_name_exact = set.heap_bytes() as f64 / n as f64;
        let per_name_malloc = (n * entry + malloc_bytes) as f64 / n as f64;
        println!(
            "memory per discovered function: size_of::<Box<str>>() = {entry} B index entry + \
             {:.1} B average name ({} names) = {per_name_exact:.1} B exact heap; \
             {per_name_malloc:.1} B with glibc malloc rounding; \
             size_of::<String>() = {} (not used), size_of::<DiscoveredSet>() = {}",
            name_bytes as f64 / n as f64,
            n,
            std::mem::size_of::<String>(),
            std::mem::size_of::<DiscoveredSet>(),
        );
        assert_eq!(entry, 16);
        assert!(per_name_malloc < 64.0, "{per_name_malloc}");
    }
}
