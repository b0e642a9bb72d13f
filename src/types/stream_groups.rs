//! Consumer groups of one stream: each group's last-delivered ID and entries-read counter, its
//! consumers, and its pending entries list (PEL).
//!
//! Placeholder: the consumer-group work replaces this with the real structures. Until then a
//! stream has no groups.

/// The consumer groups of one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamGroups {}

impl StreamGroups {
    /// How many groups the stream has.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        true
    }
}
