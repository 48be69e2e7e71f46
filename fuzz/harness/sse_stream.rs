//! The LLM clients' streamed bodies: SSE bytes cut into chunks of the size
//! the first byte gives (1 to 256), decoded for each provider and assembled
//! into a response as a loop does.

use taskdaemon_llm::{Assembler, Provider, StreamDecoder};

/// Whether either provider's decoding gives a complete response.
pub fn run(data: &[u8]) -> Result<(), String> {
    let Some((&split, body)) = data.split_first() else {
        return Err("empty".to_owned());
    };
    let chunk = usize::from(split) + 1;
    let mut outcome = Err("no provider assembled a response".to_owned());
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let mut decoder = StreamDecoder::new(provider);
        let mut events = Vec::new();
        for piece in body.chunks(chunk) {
            events.extend(decoder.feed(piece));
        }
        events.extend(decoder.finish());
        let mut assembler = Assembler::new();
        for event in events {
            match event {
                Ok(event) => assembler.push(&event),
                Err(_) => break,
            }
        }
        if assembler.finish().is_ok() {
            outcome = Ok(());
        }
    }
    outcome
}
