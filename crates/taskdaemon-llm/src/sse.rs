//! Incremental Server-Sent Events parser.
//!
//! Bytes arrive in arbitrary chunks: a chunk may end inside a line, inside a
//! UTF-8 sequence, or between the `\r` and `\n` of a line ending. The parser
//! buffers raw bytes and only decodes complete lines, so any split of a valid
//! stream yields the same events.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds bytes in, gets complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    has_data: bool,
}

impl SseParser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' => {
                    let line = self.buf[start..i].to_vec();
                    self.line(&line, &mut out);
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    // A trailing '\r' might be the first half of "\r\n": wait for more bytes.
                    if i + 1 == self.buf.len() {
                        break;
                    }
                    let line = self.buf[start..i].to_vec();
                    self.line(&line, &mut out);
                    i += if self.buf[i + 1] == b'\n' { 2 } else { 1 };
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Ends the stream: a final line without a newline is processed, but an
    /// event not terminated by a blank line is dropped, as the SSE spec says.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let mut rest = std::mem::take(&mut self.buf);
            if rest.last() == Some(&b'\r') {
                rest.pop();
                self.line(&rest, &mut out);
            }
        }
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: self.data.join("\n"),
                });
            }
            self.event = None;
            self.data.clear();
            self.has_data = false;
            return;
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(pos) => {
                let value = &line[pos + 1..];
                (&line[..pos], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                self.data.push(value.to_string());
                self.has_data = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: comment\r\n\r\nevent: ping\r\ndata: {}\r\n\r\ndata: line one\ndata: line two é✓\n\nevent: message_stop\rdata: {\"type\":\"message_stop\"}\r\r";

    fn parse_whole(s: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = p.feed(s);
        out.extend(p.finish());
        out
    }

    #[test]
    fn parses_events_with_all_line_endings() {
        let events = parse_whole(STREAM.as_bytes());
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].event.as_deref(), Some("message_start"));
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[1].event.as_deref(), Some("ping"));
        assert_eq!(events[2].event, None);
        assert_eq!(events[2].data, "line one\nline two é✓");
        assert_eq!(events[3].event.as_deref(), Some("message_stop"));
    }

    #[test]
    fn unterminated_event_is_not_dispatched() {
        assert!(parse_whole(b"event: x\ndata: partial").is_empty());
    }

    proptest! {
        #[test]
        fn any_split_parses_identically(cuts in proptest::collection::vec(0usize..=STREAM.len(), 0..12)) {
            let bytes = STREAM.as_bytes();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut p = SseParser::new();
            let mut out = Vec::new();
            let mut prev = 0;
            for cut in cuts {
                out.extend(p.feed(&bytes[prev..cut]));
                prev = cut;
            }
            out.extend(p.feed(&bytes[prev..]));
            out.extend(p.finish());
            prop_assert_eq!(out, parse_whole(bytes));
        }
    }
}
