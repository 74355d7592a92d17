//! A fan-out writes one frame (the same bytes) into every subscriber's outlet, and the
//! subscribers of a thread drain it one after another, each a batch of frames. Over
//! Socket.IO each delivery must be translated (a jii frame into an event) and framed
//! (`4…`); a [`Cache`] per thread does each once per frame, not once per subscriber.
//!
//! Entries are keyed by the address and length of the frame's bytes, and keep the frame
//! (a reference to its bytes), so no other frame can be at that address while it is in
//! the cache. The cache is bounded: it is emptied when it holds more than
//! [`MAX_ENTRIES`] frames or [`MAX_BYTES`] bytes of them.

use std::cell::RefCell;
use std::collections::HashMap;

use bytestring::ByteString;

/// Most frames a cache keeps.
pub(crate) const MAX_ENTRIES: usize = 1024;
/// Most bytes of frames a cache keeps.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// Translations of recent frames, for one thread.
#[derive(Default)]
pub(crate) struct Cache {
    entries: HashMap<(usize, usize), (ByteString, ByteString)>,
    bytes: usize,
}

impl Cache {
    /// The translation of `key`: cached, or made by `make` and cached.
    pub(crate) fn get(
        cell: &RefCell<Cache>,
        key: &ByteString,
        make: impl FnOnce() -> ByteString,
    ) -> ByteString {
        let id = (key.as_ptr() as usize, key.len());
        if let Ok(cache) = cell.try_borrow() {
            if let Some((_, value)) = cache.entries.get(&id) {
                return value.clone();
            }
        }
        let value = make();
        if let Ok(mut cache) = cell.try_borrow_mut() {
            if cache.entries.len() >= MAX_ENTRIES || cache.bytes + key.len() > MAX_BYTES {
                cache.entries.clear();
                cache.bytes = 0;
            }
            cache.bytes += key.len();
            cache.entries.insert(id, (key.clone(), value.clone()));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_translated_once_other_bytes_again() {
        let cache = RefCell::new(Cache::default());
        let frame = ByteString::from("channel x 1");
        let mut made = 0;
        for _ in 0..3 {
            let got = Cache::get(&cache, &frame.clone(), || {
                made += 1;
                ByteString::from("event")
            });
            assert_eq!(got, "event");
        }
        assert_eq!(made, 1);
        let same_text = ByteString::from("channel x 1");
        Cache::get(&cache, &same_text, || {
            made += 1;
            ByteString::from("event")
        });
        assert_eq!(made, 2, "another frame with the same text is another entry");
    }

    #[test]
    fn it_stays_bounded() {
        let cache = RefCell::new(Cache::default());
        let frames: Vec<ByteString> = (0..MAX_ENTRIES + 10)
            .map(|n| ByteString::from(format!("channel x {n}")))
            .collect();
        for frame in &frames {
            Cache::get(&cache, frame, || frame.clone());
        }
        assert!(cache.borrow().entries.len() <= MAX_ENTRIES);
    }
}
