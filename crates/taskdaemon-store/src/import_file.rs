//! Reading an import file: an export as one JSON array or as JSON lines,
//! fed record by record into an [`Importer`]. The format is told by the
//! first byte that is not white space; errors name the line (JSON lines) or
//! the record number (array), and the caller drops the importer on error so
//! nothing of the file is kept.

use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, SeqAccess, Visitor};

use crate::{ExportRecord, Importer};

/// Feeds every record of an export file to `importer`, without finishing it.
pub fn feed_export(mut reader: impl BufRead, importer: &mut dyn Importer) -> Result<(), String> {
    match first_byte(&mut reader).map_err(|e| e.to_string())? {
        Some(b'[') => feed_json(reader, importer),
        Some(b'{') => feed_jsonl(reader, importer),
        Some(_) => Err("not an export: expected a JSON array or JSON lines".to_owned()),
        None => Err("the file is empty".to_owned()),
    }
}

/// The first byte that is not white space, left unread.
fn first_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        let Some(&byte) = buf.first() else {
            return Ok(None);
        };
        if byte.is_ascii_whitespace() {
            reader.consume(1);
        } else {
            return Ok(Some(byte));
        }
    }
}

fn feed_jsonl(reader: impl BufRead, importer: &mut dyn Importer) -> Result<(), String> {
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| format!("line {number}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ExportRecord =
            serde_json::from_str(&line).map_err(|e| format!("line {number}: {e}"))?;
        importer
            .add(record)
            .map_err(|e| format!("line {number}: {e}"))?;
    }
    Ok(())
}

/// Streams a JSON array into the importer one element at a time.
fn feed_json(reader: impl Read, importer: &mut dyn Importer) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    Feed { importer }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())
}

struct Feed<'a> {
    importer: &'a mut dyn Importer,
}

impl<'de> DeserializeSeed<'de> for Feed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Feed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of export records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut number = 0usize;
        while let Some(record) = seq.next_element::<ExportRecord>()? {
            number += 1;
            self.importer
                .add(record)
                .map_err(|e| serde::de::Error::custom(format!("record {number}: {e}")))?;
        }
        Ok(())
    }
}
