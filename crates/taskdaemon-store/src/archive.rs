//! The compressed event archive's chunk format, shared by every backend:
//! deflate over JSON lines, one [`Event`] a line.

use std::io::{BufRead, BufReader, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use taskdaemon_core::Event;

use crate::{ArchiveReport, Result, StoreError};

/// Events per archive chunk: big enough to compress well, small enough to
/// decompress on demand for one search hit.
pub(crate) const CHUNK_EVENTS: usize = 1000;

pub(crate) fn compress(events: &[Event]) -> Result<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    for event in events {
        serde_json::to_writer(&mut encoder, event).map_err(|e| StoreError::Malformed {
            field: "events",
            message: e.to_string(),
        })?;
        encoder.write_all(b"\n").map_err(archive_io)?;
    }
    encoder.finish().map_err(archive_io)
}

fn archive_io(error: std::io::Error) -> StoreError {
    StoreError::Malformed {
        field: "event_archive.data",
        message: error.to_string(),
    }
}

pub(crate) fn decode_chunk(data: &[u8]) -> Result<Vec<Event>> {
    let reader = BufReader::new(DeflateDecoder::new(data));
    reader
        .lines()
        .map(|line| {
            let line = line.map_err(archive_io)?;
            serde_json::from_str(&line).map_err(|e| StoreError::Malformed {
                field: "event_archive.data",
                message: e.to_string(),
            })
        })
        .collect()
}

/// Archives chunk by chunk with `one_chunk` (one transaction each, so other
/// writers wait only briefly) until it finds nothing left to move.
pub(crate) fn in_chunks(mut one_chunk: impl FnMut() -> Result<usize>) -> Result<ArchiveReport> {
    let mut report = ArchiveReport::default();
    loop {
        let moved = one_chunk()?;
        if moved == 0 {
            return Ok(report);
        }
        report.events += moved as u64;
        report.chunks += 1;
    }
}

/// The archived part of a history page: the events after `after_seq` that
/// `filter` keeps, from `chunks` (the ids of the chunks that may hold
/// some, in log order) read with `read_chunk`, up to `limit`. At most one
/// decompressed chunk is held at a time.
pub(crate) fn archived_page(
    chunks: &[i64],
    mut read_chunk: impl FnMut(i64) -> Result<Vec<Event>>,
    filter: &crate::HistoryFilter,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for &chunk in chunks {
        for event in read_chunk(chunk)? {
            let cursor = events.last().map_or(after_seq, |e: &Event| e.seq);
            if event.seq > cursor && matches(filter, &event) {
                events.push(event);
                if events.len() == limit {
                    return Ok(events);
                }
            }
        }
    }
    Ok(events)
}

/// One archive chunk about to be written: the range it covers and its data.
pub(crate) struct Chunk {
    pub first_seq: i64,
    pub last_seq: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub count: i64,
    pub data: Vec<u8>,
}

/// The chunk holding `events` (oldest first); `None` when there are none.
pub(crate) fn chunk(events: &[Event]) -> Result<Option<Chunk>> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(None);
    };
    Ok(Some(Chunk {
        first_seq: first.seq,
        last_seq: last.seq,
        first_at: events.iter().map(|e| e.at).min().unwrap_or(first.at),
        last_at: events.iter().map(|e| e.at).max().unwrap_or(last.at),
        count: events.len() as i64,
        data: compress(events)?,
    }))
}

/// Whether a history page's filter keeps `event`.
pub(crate) fn matches(filter: &crate::HistoryFilter, event: &Event) -> bool {
    filter.since.is_none_or(|since| event.at >= since)
        && filter
            .task_id
            .as_deref()
            .is_none_or(|task| event.task_id.as_deref() == Some(task))
}
