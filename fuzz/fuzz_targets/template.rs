//! Any text through the chat-template analyser (parse, fold, judge), and any bytes through the
//! GGUF chat-template reader.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::container::template;
use picklescan_rs::internals::format::gguf;

fuzz_target!(|data: &[u8]| {
    let _ = gguf::chat_templates(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = template::analyse(text);
    }
});
