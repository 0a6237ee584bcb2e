//! The public corpus: files written by other people's tools, decoded as torch 2.15 decodes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

fn check(set: &str, expected_files: usize) {
    let Some(corpus) = test_support::corpus() else {
        return;
    };
    let (files, failures) =
        test_support::torch::check_manifest(&corpus.join(set).join("expected.json"), &corpus, false);
    assert_eq!(files, expected_files, "{set}: manifest size");
    assert!(
        failures.is_empty(),
        "{set}: {} of {files} files differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gopickle_all_dtypes_protocols_and_formats_match_torch() {
    check("gopickle", 100);
}

#[test]
fn burn_store_test_files_match_torch() {
    check("burn", 30);
}
