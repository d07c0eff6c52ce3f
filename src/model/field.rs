//! One field of a collected resource as JSON, serialized on demand from the typed struct: the
//! rules read resources through this instead of a second JSON copy of each one. It goes
//! through the same `Serialize` as the snapshot file, so a field reads exactly as it is stored.

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeStruct};
use serde_json::Value;

/// The field `name` of `resource` (a struct) as JSON; `None` when the struct has no such field
/// or skips it (as `skip_serializing_if` does for an absent optional value).
pub fn field_of<T: Serialize + ?Sized>(resource: &T, name: &str) -> Option<Value> {
    resource.serialize(FieldPicker { name }).ok().flatten()
}

/// A serializer that accepts one struct and keeps only the field it is asked for.
struct FieldPicker<'n> {
    name: &'n str,
}

/// The struct being walked, with the field once it has been seen.
struct PickedStruct<'n> {
    name: &'n str,
    found: Option<Value>,
}

type Unsupported = Impossible<Option<Value>, serde_json::Error>;

fn not_a_struct<T>() -> Result<T, serde_json::Error> {
    Err(ser::Error::custom("field_of reads the fields of a struct"))
}

/// The methods of a serializer for what is not a struct: each refuses.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Self::Error> { not_a_struct() })*
    };
}

impl<'n> ser::Serializer for FieldPicker<'n> {
    type Ok = Option<Value>;
    type Error = serde_json::Error;
    type SerializeSeq = Unsupported;
    type SerializeTuple = Unsupported;
    type SerializeTupleStruct = Unsupported;
    type SerializeTupleVariant = Unsupported;
    type SerializeMap = Unsupported;
    type SerializeStruct = PickedStruct<'n>;
    type SerializeStructVariant = Unsupported;

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Ok(PickedStruct {
            name: self.name,
            found: None,
        })
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

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<Self::Ok, Self::Error> {
        not_a_struct()
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<Self::Ok, Self::Error> {
        not_a_struct()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Self::Ok, Self::Error> {
        not_a_struct()
    }
}

impl SerializeStruct for PickedStruct<'_> {
    type Ok = Option<Value>;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        if key == self.name {
            self.found = Some(serde_json::to_value(value)?);
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, Self::Error> {
        Ok(self.found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Example {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        absent: Option<u8>,
        #[serde(rename = "renamed")]
        inner: Vec<u16>,
    }

    #[test]
    fn picks_one_field_as_the_whole_struct_would_serialize_it() {
        let e = Example {
            name: "n".into(),
            absent: None,
            inner: vec![1, 2],
        };
        assert_eq!(field_of(&e, "name"), Some(Value::from("n")));
        assert_eq!(field_of(&e, "renamed"), Some(serde_json::json!([1, 2])));
        assert_eq!(field_of(&e, "inner"), None);
        assert_eq!(field_of(&e, "absent"), None);
        assert_eq!(field_of(&e, "missing"), None);
        assert_eq!(field_of(&"not a struct", "len"), None);
    }
}
