//! Checks that zips and their nested `.pth` members open: `cargo run --example zipcheck -- FILES`.
fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        match pth_reader::ZipArchive::parse(bytes.as_slice().into()) {
            Err(e) => println!("{path}: {e}"),
            Ok(zip) => {
                for e in zip.entries().iter().filter(|e| e.name().ends_with(".pth")) {
                    let r = zip.read(e, 1 << 30).and_then(|b| {
                        pth_reader::Checkpoint::from_shared(b, &pth_reader::Options::default().lenient(true))
                    });
                    if let Err(err) = r {
                        println!("{path}!{}: {err}", e.name());
                    }
                }
            }
        }
    }
}
