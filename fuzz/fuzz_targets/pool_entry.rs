//! Arbitrary text as an IPAddressPool address entry (CIDR or range) never panics the parser,
//! and whatever it accepts is a well-formed range whose text form parses back the same.
#![no_main]

use ferrolb_config::ipset::parse_pool_entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(range) = parse_pool_entry(text) {
        assert!(range.start() <= range.end());
        let again = parse_pool_entry(&range.to_string()).expect("display form parses");
        assert_eq!(again, range);
    }
});
