//! The small reader/writer every message is built from.
//!
//! Every field is read from and written to a fixed offset of a fixed-size array, through
//! [`chunk`] and [`put`]: both are total (no indexing that can panic) and, with constant
//! offsets into a `[u8; SIZE]`, compile down to plain loads and stores. The
//! [`wire_message!`](crate::wire_message) macro below generates a message's struct, its
//! `encode`/`decode` and its offset table ([`Layout`]) from one written-out list of
//! `offset => field: type` lines, and asserts at compile time that the fields and the reserved
//! spans tile the message exactly.

use crate::error::FieldError;

/// One field of a message layout: what `docs/PROTOCOL.md` shows in its offset tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    /// The wire type as the spec names it (`u64`, `i64`, `Side (u8)`, ...).
    pub ty: &'static str,
    /// Unit and valid values (the field's doc comment).
    pub doc: &'static str,
    /// A range rule the decoder enforces (`"nonzero"`), or `""`.
    pub rule: &'static str,
}

/// The offset table of one message (or of the fixed part of a variable-length record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub name: &'static str,
    pub template_id: u16,
    pub schema_id: u16,
    /// Total size in bytes (the fixed part, for the log record and the packet header).
    pub size: usize,
    /// Fields after the common header, in offset order as written.
    pub fields: &'static [FieldDesc],
    /// Reserved spans `(offset, size)`: must be zero on the wire.
    pub reserved: &'static [(usize, usize)],
}

/// Valid values of one wire enum, for the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumDesc {
    pub name: &'static str,
    pub variants: &'static [(&'static str, u8, &'static str)],
}

/// `N` bytes at `off`, or zeros if out of range (never, for the constant offsets the layouts
/// use: the compile-time layout check proves them in range, and the branch folds away).
#[inline(always)]
pub(crate) fn chunk<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    match buf.get(off..).and_then(|s| s.first_chunk::<N>()) {
        Some(c) => *c,
        None => [0; N],
    }
}

/// Writes `bytes` at `off`; a no-op if out of range (never, as for [`chunk`]).
#[inline(always)]
pub(crate) fn put<const N: usize>(buf: &mut [u8], off: usize, bytes: [u8; N]) {
    if let Some(d) = buf.get_mut(off..).and_then(|s| s.first_chunk_mut::<N>()) {
        *d = bytes;
    }
}

/// Whether `buf[start..end]` is all zero (false if out of range).
#[inline(always)]
pub(crate) fn is_zero(buf: &[u8], start: usize, end: usize) -> bool {
    match buf.get(start..end) {
        Some(s) => s.iter().fold(0u8, |acc, &b| acc | b) == 0,
        None => false,
    }
}

/// A value that has a fixed-size little-endian wire form.
pub trait WireField: Copy + Sized {
    /// Bytes on the wire.
    const SIZE: usize;
    /// The type as the spec names it.
    const TYPE: &'static str;
    /// Reads and validates the value at `off`.
    fn read(buf: &[u8], off: usize) -> Result<Self, FieldError>;
    /// Writes the value at `off`.
    fn write(self, buf: &mut [u8], off: usize);
    /// Whether the value can be encoded so that it decodes to itself (see `Option<u32>`).
    #[inline(always)]
    fn encodable(&self) -> bool {
        true
    }
}

macro_rules! int_field {
    ($($t:ty => $n:literal),*) => {$(
        impl WireField for $t {
            const SIZE: usize = $n;
            const TYPE: &'static str = stringify!($t);
            #[inline(always)]
            fn read(buf: &[u8], off: usize) -> Result<Self, FieldError> {
                Ok(<$t>::from_le_bytes(chunk::<$n>(buf, off)))
            }
            #[inline(always)]
            fn write(self, buf: &mut [u8], off: usize) {
                put::<$n>(buf, off, self.to_le_bytes());
            }
        }
    )*};
}
int_field!(u8 => 1, u16 => 2, u32 => 4, u64 => 8, i64 => 8, u128 => 16);

impl WireField for bool {
    const SIZE: usize = 1;
    const TYPE: &'static str = "bool (u8)";
    #[inline(always)]
    fn read(buf: &[u8], off: usize) -> Result<Self, FieldError> {
        match chunk::<1>(buf, off) {
            [0] => Ok(false),
            [1] => Ok(true),
            [v] => Err(FieldError::InvalidBool(v)),
        }
    }
    #[inline(always)]
    fn write(self, buf: &mut [u8], off: usize) {
        put::<1>(buf, off, [self as u8]);
    }
}

/// The wire value of an absent optional instrument: `0xFFFF_FFFF` (never a real instrument id).
pub const NO_INSTRUMENT: u32 = u32::MAX;

/// An optional instrument id: `None` is [`NO_INSTRUMENT`]. `Some(0xFFFF_FFFF)` cannot be encoded.
impl WireField for Option<u32> {
    const SIZE: usize = 4;
    const TYPE: &'static str = "OptInstrument (u32)";
    #[inline(always)]
    fn read(buf: &[u8], off: usize) -> Result<Self, FieldError> {
        let v = u32::from_le_bytes(chunk::<4>(buf, off));
        Ok(if v == NO_INSTRUMENT { None } else { Some(v) })
    }
    #[inline(always)]
    fn write(self, buf: &mut [u8], off: usize) {
        put::<4>(buf, off, self.unwrap_or(NO_INSTRUMENT).to_le_bytes());
    }
    #[inline(always)]
    fn encodable(&self) -> bool {
        *self != Some(NO_INSTRUMENT)
    }
}

/// An opaque 32-byte credential (e.g. an HMAC of the session key); any bytes are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Token(pub [u8; 32]);

impl WireField for Token {
    const SIZE: usize = 32;
    const TYPE: &'static str = "[u8; 32]";
    #[inline(always)]
    fn read(buf: &[u8], off: usize) -> Result<Self, FieldError> {
        Ok(Token(chunk::<32>(buf, off)))
    }
    #[inline(always)]
    fn write(self, buf: &mut [u8], off: usize) {
        put::<32>(buf, off, self.0);
    }
}

/// An instrument symbol: 1 to 16 printable ASCII bytes (`0x21..=0x7E`), left-aligned, padded
/// with zero bytes. Construct with [`Symbol::new`]; an invalid one cannot exist.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Symbol([u8; 16]);

impl Symbol {
    /// The one-character symbol `"!"` (a valid placeholder).
    pub const MIN: Symbol = Symbol([0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

    /// The symbol, if `s` is 1 to 16 printable ASCII characters without spaces.
    pub fn new(s: &str) -> Option<Symbol> {
        let mut b = [0u8; 16];
        let src = s.as_bytes();
        if src.is_empty() || src.len() > 16 {
            return None;
        }
        for (d, &c) in b.iter_mut().zip(src) {
            *d = c;
        }
        Symbol::from_bytes(b)
    }

    /// The symbol, if `b` is a valid wire symbol.
    pub fn from_bytes(b: [u8; 16]) -> Option<Symbol> {
        let len = b.iter().position(|&c| c == 0).unwrap_or(16);
        let (text, pad) = b.split_at(len);
        let ok = !text.is_empty()
            && text.iter().all(|c| (0x21..=0x7E).contains(c))
            && pad.iter().all(|&c| c == 0);
        ok.then_some(Symbol(b))
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&c| c == 0).unwrap_or(16);
        let text = self.0.get(..len).unwrap_or(&[]);
        core::str::from_utf8(text).unwrap_or("")
    }

    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }
}

impl core::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl WireField for Symbol {
    const SIZE: usize = 16;
    const TYPE: &'static str = "Symbol ([u8; 16])";
    #[inline(always)]
    fn read(buf: &[u8], off: usize) -> Result<Self, FieldError> {
        Symbol::from_bytes(chunk::<16>(buf, off)).ok_or(FieldError::OutOfRange)
    }
    #[inline(always)]
    fn write(self, buf: &mut [u8], off: usize) {
        put::<16>(buf, off, self.0);
    }
}

/// Range rules a field may carry in [`wire_message!`](crate::wire_message) (`[nonzero]`, ...).
pub mod rules {
    /// Values that can be zero.
    pub trait Zero {
        fn is_zero(&self) -> bool;
    }
    macro_rules! zero {
        ($($t:ty),*) => {$(impl Zero for $t { #[inline(always)] fn is_zero(&self) -> bool { *self == 0 } })*};
    }
    zero!(u16, u32, u64, i64);

    /// `!= 0`.
    #[inline(always)]
    pub fn nonzero<T: Zero>(v: &T) -> bool {
        !v.is_zero()
    }
}

/// Compile-time layout check: the header `[0, 8)`, the fields and the reserved spans must tile
/// `[0, size)` exactly, with no overlap and no gap.
pub const fn layout_tiles(size: usize, fields: &[FieldDesc], reserved: &[(usize, usize)]) -> bool {
    let mut covered = [false; 256];
    if size > 256 || size < crate::header::HEADER_LEN {
        return false;
    }
    let mut i = 0;
    while i < crate::header::HEADER_LEN {
        covered[i] = true;
        i += 1;
    }
    let mut f = 0;
    while f < fields.len() + reserved.len() {
        let (off, len) = if f < fields.len() {
            (fields[f].offset, fields[f].size)
        } else {
            reserved[f - fields.len()]
        };
        if len == 0 || off + len > size {
            return false;
        }
        let mut j = off;
        while j < off + len {
            if covered[j] {
                return false;
            }
            covered[j] = true;
            j += 1;
        }
        f += 1;
    }
    let mut k = 0;
    while k < size {
        if !covered[k] {
            return false;
        }
        k += 1;
    }
    true
}

/// Fields are naturally aligned (an `N`-byte integer at a multiple of `min(N, 8)`).
pub const fn layout_aligned(fields: &[FieldDesc]) -> bool {
    let mut f = 0;
    while f < fields.len() {
        let a = if fields[f].size >= 8 {
            8
        } else {
            fields[f].size
        };
        if fields[f].offset % a != 0 {
            return false;
        }
        f += 1;
    }
    true
}

/// Declares a wire enum (`u8` on the wire) with `from_u8`, `as_u8`, `ALL` and its spec table.
#[macro_export]
#[doc(hidden)]
macro_rules! wire_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident {
            $( $(#[doc = $vdoc:literal])* $var:ident = $val:literal ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $( $(#[doc = $vdoc])* $var = $val ),* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];
            /// The values for the spec.
            pub const DESC: $crate::codec::EnumDesc = $crate::codec::EnumDesc {
                name: stringify!($name),
                variants: &[$((stringify!($var), $val, concat!("" $(, $vdoc)*))),*],
            };
            /// The value with this wire code, if any.
            #[inline(always)]
            pub const fn from_u8(v: u8) -> Option<Self> {
                match v { $($val => Some(Self::$var),)* _ => None }
            }
            /// The wire code.
            #[inline(always)]
            pub const fn as_u8(self) -> u8 { self as u8 }
        }

        impl $crate::codec::WireField for $name {
            const SIZE: usize = 1;
            const TYPE: &'static str = concat!(stringify!($name), " (u8)");
            #[inline(always)]
            fn read(buf: &[u8], off: usize) -> Result<Self, $crate::error::FieldError> {
                let [v] = $crate::codec::chunk::<1>(buf, off);
                Self::from_u8(v).ok_or($crate::error::FieldError::InvalidEnum(v))
            }
            #[inline(always)]
            fn write(self, buf: &mut [u8], off: usize) {
                $crate::codec::put::<1>(buf, off, [self as u8]);
            }
        }
    };
}

/// Declares a fixed-size message: the struct, `decode`/`encode`, its [`Layout`] and the
/// compile-time assertions that the layout tiles the message and that its fields are aligned.
///
/// ```text
/// wire_message! {
///     /// doc
///     pub struct Name = template T, schema S, size N {
///         /// unit / valid values
///         8 => field: u64 [nonzero],
///         ...
///     }
///     reserved [42..48]
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! wire_message {
    (
        $(#[$m:meta])*
        pub struct $name:ident = template $tid:expr, schema $schema:expr, size $size:literal {
            $( $(#[doc = $fdoc:literal])* $off:literal => $field:ident : $ty:ty $([$rule:ident])? ),* $(,)?
        }
        reserved [ $( $rs:literal .. $re:literal ),* $(,)? ]
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[doc = $fdoc])* pub $field: $ty, )*
        }

        impl $name {
            pub const TEMPLATE_ID: u16 = $tid;
            pub const SCHEMA_ID: u16 = $schema;
            /// Size on the wire, header included.
            pub const SIZE: usize = $size;
            /// The offset table.
            pub const LAYOUT: $crate::codec::Layout = $crate::codec::Layout {
                name: stringify!($name),
                template_id: $tid,
                schema_id: $schema,
                size: $size,
                fields: &[$($crate::codec::FieldDesc {
                    name: stringify!($field),
                    offset: $off,
                    size: <$ty as $crate::codec::WireField>::SIZE,
                    ty: <$ty as $crate::codec::WireField>::TYPE,
                    doc: concat!("" $(, $fdoc)*),
                    rule: concat!("" $(, stringify!($rule))?),
                }),*],
                reserved: &[$(($rs, $re - $rs)),*],
            };
            /// The common header every encoding of this message starts with, as a `u64`.
            const HEADER_WORD: u64 = $crate::header::Header::fixed($tid, $schema, $size).to_word();

            /// Decodes and validates one message that fills `buf` exactly.
            #[inline(always)]
            pub fn decode(buf: &[u8]) -> Result<Self, $crate::error::DecodeError> {
                let b: &[u8; $size] = match <&[u8; $size]>::try_from(buf) {
                    Ok(b) if u64::from_le_bytes($crate::codec::chunk::<8>(b, 0)) == Self::HEADER_WORD => b,
                    _ => return Err($crate::header::fixed_header_error(buf, $tid, $schema, $size)),
                };
                $(
                    if !$crate::codec::is_zero(b, $rs, $re) {
                        return Err($crate::error::DecodeError::NonZeroReserved {
                            template_id: $tid,
                            offset: $crate::codec::first_nonzero(b, $rs, $re),
                        });
                    }
                )*
                let _ = b;
                Ok(Self { $(
                    $field: {
                        let v = match <$ty as $crate::codec::WireField>::read(b, $off) {
                            Ok(v) => v,
                            Err(e) => return Err(e.at($tid, $off)),
                        };
                        $(
                            if !$crate::codec::rules::$rule(&v) {
                                return Err($crate::error::DecodeError::OutOfRange { template_id: $tid, offset: $off });
                            }
                        )?
                        v
                    },
                )* })
            }

            /// Encodes into the front of `buf`; returns the bytes written ([`Self::SIZE`]).
            #[inline]
            pub fn encode(&self, buf: &mut [u8]) -> Result<usize, $crate::error::EncodeError> {
                $(
                    if !$crate::codec::WireField::encodable(&self.$field)
                        $( || !$crate::codec::rules::$rule(&self.$field) )?
                    {
                        return Err($crate::error::EncodeError::InvalidField { template_id: $tid, offset: $off });
                    }
                )*
                let available = buf.len();
                let Some(dst) = buf.first_chunk_mut::<$size>() else {
                    return Err($crate::error::EncodeError::BufferTooSmall { needed: $size, available });
                };
                let mut out = [0u8; $size];
                $crate::codec::put::<8>(&mut out, 0, Self::HEADER_WORD.to_le_bytes());
                $( $crate::codec::WireField::write(self.$field, &mut out, $off); )*
                *dst = out;
                Ok($size)
            }
        }

        impl $crate::codec::Message for $name {
            const LAYOUT: $crate::codec::Layout = $name::LAYOUT;
            #[inline]
            fn decode(buf: &[u8]) -> Result<Self, $crate::error::DecodeError> { $name::decode(buf) }
            #[inline]
            fn encode(&self, buf: &mut [u8]) -> Result<usize, $crate::error::EncodeError> { $name::encode(self, buf) }
        }

        const _: () = {
            assert!($crate::codec::layout_tiles($size, $name::LAYOUT.fields, $name::LAYOUT.reserved), "layout does not tile the message");
            assert!($crate::codec::layout_aligned($name::LAYOUT.fields), "misaligned field");
            assert!($size % 8 == 0, "message size must be a multiple of 8");
        };
    };
}

/// Offset of the first non-zero byte in `buf[start..end]` (for error reports).
#[cold]
pub(crate) fn first_nonzero(buf: &[u8], start: usize, end: usize) -> u16 {
    let pos = buf
        .get(start..end)
        .and_then(|s| s.iter().position(|&b| b != 0))
        .unwrap_or(0);
    u16::try_from(start + pos).unwrap_or(u16::MAX)
}

/// What every fixed-size message implements; generic tests and tools use it.
pub trait Message: Sized + Copy {
    const LAYOUT: Layout;
    fn decode(buf: &[u8]) -> Result<Self, crate::error::DecodeError>;
    fn encode(&self, buf: &mut [u8]) -> Result<usize, crate::error::EncodeError>;
}
