//! The one load pipeline: a container locates the bytes, the pickle machine runs the object
//! pickle with the torch layer as its handler, the container then gives every storage its
//! bytes, and the specs become views.

use super::handler::{Ids, TorchHandler};
use super::spec::Work;
use super::storage::Rules;
use super::tables::{self, Tables};
use crate::container::zip::ZipArchive;
use crate::container::{self, Format, RecordNames};
use crate::pickle::machine::{self, Config};
use crate::pickle::Tree;
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Options, Result, SharedBytes};

/// A loaded torch file.
pub(crate) struct Loaded<'data> {
    pub(crate) format: Format,
    pub(crate) byte_order: ByteOrder,
    pub(crate) protocol: u8,
    pub(crate) tree: Tree<'data>,
    pub(crate) tables: Tables<'data>,
    pub(crate) records: RecordNames,
    pub(crate) warnings: Vec<String>,
    pub(crate) archive: Option<std::sync::Arc<ZipArchive<'data>>>,
}

/// Loads a torch file from its bytes, as `torch.load` would.
pub(crate) fn load<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Loaded<'data>> {
    // The file's other pickles (a legacy stream's header and key list): torch unpickles them
    // with the same loader, without a `persistent_load`.
    let mut plain = TorchHandler::new(options, "a legacy header pickle", Ids::Refused);
    let mut located = container::locate(bytes, options, &mut plain)?;
    let rules = match located.format {
        Format::Legacy => Rules::Legacy,
        _ => Rules::Zip,
    };
    let limits = options.limits();
    let mut handler = TorchHandler::new(options, &located.pickle_name, Ids::Storages(rules));
    // A zip archive's storage records: about as many storages, and tensors, as the pickle
    // will make (a hint from entries that exist, so bounded by the file).
    handler.work.expect(located.records.len());
    let config = Config {
        record: &located.pickle_name,
        limits,
        lenient: options.is_lenient(),
        lossy_text: false,
    };
    let out = machine::unpickle(located.pickle.clone(), &config, &mut handler)?;
    // `torch.load(weights_only=True)` refuses any archive with a `constants.pkl` record (checked
    // after the pickle, so that a refused global is what a TorchScript module's error names).
    if located.format == Format::TorchScript && !options.is_lenient() {
        return Err(Error::from(ErrorKind::Unsupported {
            what: "a TorchScript archive (constants.pkl): torch.load(weights_only=True) refuses it; open it in \
                   lenient mode to read its tensors"
                .into(),
        }));
    }
    let tables = tables::finish(
        handler.into_work(),
        located.storages.as_mut(),
        out.consumed,
        &mut plain,
        located.byte_order,
        limits,
    )?;
    super::sparse::validate(&out.tree, &tables, &tables.sparse)?;
    located.warnings.extend(located.storages.warnings());
    located.warnings.extend(tables.warnings.iter().cloned());
    Ok(Loaded {
        format: located.format,
        byte_order: located.byte_order,
        protocol: out.protocol,
        tree: out.tree,
        tables,
        records: located.records,
        warnings: located.warnings,
        archive: located.archive,
    })
}

/// Decodes a standalone pickle (no storages: persistent ids stay unresolved, torch calls
/// inert); Python's builtins are evaluated, strict mode allows only torch's globals.
pub(crate) fn standalone<'data>(bytes: SharedBytes<'data>, name: &str, options: &Options) -> Result<(Tree<'data>, u8)> {
    let mut handler = TorchHandler::new(options, name, Ids::Kept);
    let config = Config {
        record: name,
        limits: options.limits(),
        lenient: true,
        lossy_text: true,
    };
    let out = machine::unpickle(bytes, &config, &mut handler)?;
    let _: Work = handler.into_work();
    Ok((out.tree, out.protocol))
}
