//! A flat row struct as (column, cell) pairs, for tables whose columns are a struct's fields:
//! the column names are the fields' own (`&'static str`, from serde), numbers are written as
//! Rust prints them (`0.00001`, `NaN`), `None` as an empty cell, enums by their serde name.
//! Reading back goes through `csv`'s serde support (a header and a record).

use serde::ser::{self, Impossible, Serialize};

/// Why a value is not a flat row.
#[derive(Debug)]
pub struct RowError(String);

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RowError {}

impl ser::Error for RowError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        RowError(msg.to_string())
    }
}

/// The (column, cell) pairs of `row`, a struct of plain fields.
pub fn cells<T: Serialize>(row: &T) -> Result<Vec<(&'static str, String)>, RowError> {
    row.serialize(RowSerializer)
}

struct RowSerializer;

/// Collects a struct's fields.
struct Fields(Vec<(&'static str, String)>);

impl ser::SerializeStruct for Fields {
    type Ok = Vec<(&'static str, String)>;
    type Error = RowError;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), RowError> {
        self.0.push((key, value.serialize(CellSerializer)?));
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, RowError> {
        Ok(self.0)
    }
}

fn not_a_row<T>(what: &str) -> Result<T, RowError> {
    Err(RowError(format!("a row is a struct of plain fields, not {what}")))
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, RowError> {
            not_a_row(stringify!($method))
        })*
    };
}

/// `serialize_newtype_struct` (the inner value, serialized alike) and
/// `serialize_newtype_variant` (refused as `what`), for both serializers.
macro_rules! newtypes {
    ($ok:ty, $what:literal) => {
        fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<$ok, RowError> {
            v.serialize(self)
        }

        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, RowError> {
            not_a_row($what)
        }
    };
}

/// A cell of each primitive, as Rust prints it.
macro_rules! printed {
    ($($method:ident($arg:ty);)*) => {
        $(fn $method(self, v: $arg) -> Result<String, RowError> {
            Ok(v.to_string())
        })*
    };
}

impl ser::Serializer for RowSerializer {
    type Ok = Vec<(&'static str, String)>;
    type Error = RowError;
    type SerializeSeq = Impossible<Self::Ok, RowError>;
    type SerializeTuple = Impossible<Self::Ok, RowError>;
    type SerializeTupleStruct = Impossible<Self::Ok, RowError>;
    type SerializeTupleVariant = Impossible<Self::Ok, RowError>;
    type SerializeMap = Impossible<Self::Ok, RowError>;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Impossible<Self::Ok, RowError>;

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Fields, RowError> {
        Ok(Fields(Vec::with_capacity(len)))
    }

    refuse! {
        serialize_bool(bool) -> Self::Ok;
        serialize_i8(i8) -> Self::Ok;
        serialize_i16(i16) -> Self::Ok;
        serialize_i32(i32) -> Self::Ok;
        serialize_i64(i64) -> Self::Ok;
        serialize_u8(u8) -> Self::Ok;
        serialize_u16(u16) -> Self::Ok;
        serialize_u32(u32) -> Self::Ok;
        serialize_u64(u64) -> Self::Ok;
        serialize_f32(f32) -> Self::Ok;
        serialize_f64(f64) -> Self::Ok;
        serialize_char(char) -> Self::Ok;
        serialize_str(&str) -> Self::Ok;
        serialize_bytes(&[u8]) -> Self::Ok;
        serialize_none() -> Self::Ok;
        serialize_unit() -> Self::Ok;
        serialize_unit_struct(&'static str) -> Self::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> Self::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, RowError> {
        not_a_row("an option")
    }

    newtypes!(Vec<(&'static str, String)>, "an enum");
}

/// One cell's text.
struct CellSerializer;

impl ser::Serializer for CellSerializer {
    type Ok = String;
    type Error = RowError;
    type SerializeSeq = Impossible<String, RowError>;
    type SerializeTuple = Impossible<String, RowError>;
    type SerializeTupleStruct = Impossible<String, RowError>;
    type SerializeTupleVariant = Impossible<String, RowError>;
    type SerializeMap = Impossible<String, RowError>;
    type SerializeStruct = Impossible<String, RowError>;
    type SerializeStructVariant = Impossible<String, RowError>;

    printed! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<String, RowError> {
        Ok(String::from_utf8_lossy(v).into_owned())
    }
    fn serialize_none(self) -> Result<String, RowError> {
        Ok(String::new())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<String, RowError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, RowError> {
        Ok(String::new())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, RowError> {
        Ok(String::new())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<String, RowError> {
        Ok(variant.to_string())
    }
    newtypes!(String, "a cell holding an enum with data");

    refuse! {
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}
