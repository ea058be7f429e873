//! Data: pretraining corpora, packing and token files, typed fine-tuning datasets, the dataset
//! registry, and the fetching of the default datasets.

pub mod convert;
pub mod corpus;
pub mod fetch;
pub mod pack;
#[cfg(feature = "polars")]
pub mod parquet;
pub mod prepare;
pub mod records;
pub mod registry;
pub mod stats;
pub mod tasks;
pub mod tokens;

pub use corpus::{Corpus, Document};
pub use pack::{pack_corpus, PackConfig, PackMeta, TokenDtype};
pub use registry::{ClassificationSplit, DatasetSpec, Metric, Registry, TaggingSplit, TaskFamily};
pub use tasks::{
    Answer, ClassificationExample, QaExample, RetrievalCorpus, RetrievalDoc, RetrievalQuery, TaggingExample,
};
pub use tokens::{BlockSampler, Cursor, PackedDataset, Split};
