//! What one channel has moved so far, kept beside its buffer so `/status` and the metrics can
//! show every open channel without touching its sockets: bytes and frames each way, the bytes
//! waiting in its buffer, and how long its writer has waited on a full buffer. Each figure is
//! one relaxed atomic add on a path that already takes the buffer's own atomics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counters of one channel.
#[derive(Debug)]
pub(crate) struct ChannelStats {
    /// When the channel was created.
    pub(crate) created: Instant,
    /// Bytes the buffer may hold.
    pub(crate) capacity: usize,
    /// Bytes in the buffer now.
    pub(crate) held: AtomicUsize,
    written_bytes: AtomicU64,
    written_frames: AtomicU64,
    read_bytes: AtomicU64,
    read_frames: AtomicU64,
    blocked_nanos: AtomicU64,
}

/// A copy of a channel's counters at one moment (or a sum of several channels').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    /// Bytes the writer put into the buffer.
    pub(crate) written_bytes: u64,
    /// Frames (of at most 64 KiB) the writer put into the buffer.
    pub(crate) written_frames: u64,
    /// Bytes handed to the reader.
    pub(crate) read_bytes: u64,
    /// Frames handed to the reader.
    pub(crate) read_frames: u64,
    /// Nanoseconds the writer waited for room in the buffer.
    pub(crate) blocked_nanos: u64,
}

impl Traffic {
    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Traffic) {
        self.written_bytes += other.written_bytes;
        self.written_frames += other.written_frames;
        self.read_bytes += other.read_bytes;
        self.read_frames += other.read_frames;
        self.blocked_nanos += other.blocked_nanos;
    }

    /// The writer's waiting time in seconds.
    pub(crate) fn blocked_secs(&self) -> f64 {
        Duration::from_nanos(self.blocked_nanos).as_secs_f64()
    }
}

impl ChannelStats {
    /// Counters of a new channel whose buffer holds `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            created: Instant::now(),
            capacity,
            held: AtomicUsize::new(0),
            written_bytes: AtomicU64::new(0),
            written_frames: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            read_frames: AtomicU64::new(0),
            blocked_nanos: AtomicU64::new(0),
        }
    }

    /// A frame of `len` bytes entered the buffer.
    pub(crate) fn written(&self, len: usize) {
        self.written_bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.written_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame of `len` bytes was handed to the reader.
    pub(crate) fn read(&self, len: usize) {
        self.read_bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.read_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// The writer waited `waited` for room.
    pub(crate) fn blocked(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.blocked_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Bytes in the buffer now.
    pub(crate) fn buffered(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The counters now.
    pub(crate) fn traffic(&self) -> Traffic {
        Traffic {
            written_bytes: self.written_bytes.load(Ordering::Relaxed),
            written_frames: self.written_frames.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            read_frames: self.read_frames.load(Ordering::Relaxed),
            blocked_nanos: self.blocked_nanos.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let stats = ChannelStats::new(1024);
        stats.written(10);
        stats.written(5);
        stats.read(10);
        stats.blocked(Duration::from_millis(3));
        let mut total = stats.traffic();
        assert_eq!(total.written_bytes, 15);
        assert_eq!(total.written_frames, 2);
        assert_eq!(total.read_bytes, 10);
        assert_eq!(total.read_frames, 1);
        total.add(&stats.traffic());
        assert_eq!(total.written_bytes, 30);
        assert!((total.blocked_secs() - 0.006).abs() < 1e-9);
    }
}
