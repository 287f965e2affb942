//! Fuzz target: arbitrary bytes as a client connection's input. Splits them into frames with
//! `decode_frame` (after checking for a four-letter word) and decodes the first frame as a connect
//! request and every later one as `RequestHeader` + request body; nothing may panic, and whatever
//! decodes must re-encode to bytes that decode to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_core::jute::{Record, DEFAULT_MAX_BUFFER};
use outpost_core::proto::client::{decode_request, encode_request, ConnectRequest};
use outpost_core::proto::frame::{decode_frame, four_letter_word, FrameResult};

fuzz_target!(|data: &[u8]| {
    if let Some(first4) = data.get(..4) {
        let mut w = [0u8; 4];
        w.copy_from_slice(first4);
        if four_letter_word(&w).is_some() {
            return;
        }
    }
    let mut rest = data;
    let mut first = true;
    while let FrameResult::Complete { payload, consumed } = decode_frame(rest, DEFAULT_MAX_BUFFER) {
        let body = &rest[payload];
        if first {
            let _ = ConnectRequest::from_bytes(body);
            first = false;
        } else if let Ok((header, req)) = decode_request(body) {
            let again = encode_request(header.xid, &req);
            let (_, back) = decode_request(&again).expect("re-encoded request decodes");
            assert_eq!(back, req);
        }
        rest = &rest[consumed..];
    }
});
