#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_fuzz::units(data));
