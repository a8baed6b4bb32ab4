//! Typed errors. Decoding never panics: every way bytes can be wrong is a [`DecodeError`], and
//! [`DecodeError::code`] is the one-byte code a [`crate::session::SessionReject`] carries.

use core::fmt;

/// Why bytes did not decode. `template_id` and `offset` (from the start of the message) say
/// where, when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The buffer ends before the message (or record, or packet) does.
    Truncated { needed: usize, available: usize },
    /// The header's length field is impossible for the template (not its fixed size, shorter
    /// than a header, longer than the maximum).
    BadLength { template_id: u16, declared: usize },
    /// The buffer holds bytes past the end of the message (or past the last message of a packet).
    TrailingBytes { extra: usize },
    /// A template id this schema version does not define (including reserved ones).
    UnknownTemplate { template_id: u16 },
    /// A known template where the decoder does not accept it (a reply on the client channel, a
    /// session message in the input log, a packet where a message was expected, ...).
    UnexpectedTemplate { template_id: u16 },
    /// The header's schema id is not the one the template (or the channel) belongs to.
    WrongSchema { template_id: u16, schema_id: u16 },
    /// The header's version is not one this decoder speaks.
    UnsupportedVersion { version: u16 },
    /// An enum field holds a value outside its table.
    InvalidEnum {
        template_id: u16,
        offset: u16,
        value: u8,
    },
    /// A boolean field holds neither 0 nor 1.
    InvalidBool {
        template_id: u16,
        offset: u16,
        value: u8,
    },
    /// A reserved byte is not zero.
    NonZeroReserved { template_id: u16, offset: u16 },
    /// A field's value is outside its valid range (a zero quantity, a sequence that overflows,
    /// a malformed symbol, ...).
    OutOfRange { template_id: u16, offset: u16 },
    /// An input-log record's CRC32C does not match its bytes.
    ChecksumMismatch { stored: u32, computed: u32 },
}

crate::wire_enum! {
    /// The one-byte code of a [`DecodeError`], as a `SessionReject` carries it.
    pub enum DecodeErrorCode {
        /// The frame ends before the message does.
        Truncated = 1,
        /// The length field is impossible for the template.
        BadLength = 2,
        /// Bytes past the end of the message.
        TrailingBytes = 3,
        /// Template id not defined.
        UnknownTemplate = 4,
        /// Template not accepted here (e.g. a server message sent by a client).
        UnexpectedTemplate = 5,
        /// Schema id does not match.
        WrongSchema = 6,
        /// Version not supported.
        UnsupportedVersion = 7,
        /// Enum value outside its table.
        InvalidEnum = 8,
        /// Boolean neither 0 nor 1.
        InvalidBool = 9,
        /// Reserved byte not zero.
        NonZeroReserved = 10,
        /// Value out of range.
        OutOfRange = 11,
        /// CRC32C mismatch (input log only).
        ChecksumMismatch = 12,
    }
}

/// `offset` value meaning "no particular field".
pub const NO_OFFSET: u16 = u16::MAX;

impl DecodeError {
    /// The wire code.
    pub fn code(&self) -> DecodeErrorCode {
        match self {
            DecodeError::Truncated { .. } => DecodeErrorCode::Truncated,
            DecodeError::BadLength { .. } => DecodeErrorCode::BadLength,
            DecodeError::TrailingBytes { .. } => DecodeErrorCode::TrailingBytes,
            DecodeError::UnknownTemplate { .. } => DecodeErrorCode::UnknownTemplate,
            DecodeError::UnexpectedTemplate { .. } => DecodeErrorCode::UnexpectedTemplate,
            DecodeError::WrongSchema { .. } => DecodeErrorCode::WrongSchema,
            DecodeError::UnsupportedVersion { .. } => DecodeErrorCode::UnsupportedVersion,
            DecodeError::InvalidEnum { .. } => DecodeErrorCode::InvalidEnum,
            DecodeError::InvalidBool { .. } => DecodeErrorCode::InvalidBool,
            DecodeError::NonZeroReserved { .. } => DecodeErrorCode::NonZeroReserved,
            DecodeError::OutOfRange { .. } => DecodeErrorCode::OutOfRange,
            DecodeError::ChecksumMismatch { .. } => DecodeErrorCode::ChecksumMismatch,
        }
    }

    /// The template the error is about, if known (0 if not).
    pub fn template_id(&self) -> u16 {
        match *self {
            DecodeError::BadLength { template_id, .. }
            | DecodeError::UnknownTemplate { template_id }
            | DecodeError::UnexpectedTemplate { template_id }
            | DecodeError::WrongSchema { template_id, .. }
            | DecodeError::InvalidEnum { template_id, .. }
            | DecodeError::InvalidBool { template_id, .. }
            | DecodeError::NonZeroReserved { template_id, .. }
            | DecodeError::OutOfRange { template_id, .. } => template_id,
            _ => 0,
        }
    }

    /// The offset of the field at fault, or [`NO_OFFSET`].
    pub fn offset(&self) -> u16 {
        match *self {
            DecodeError::InvalidEnum { offset, .. }
            | DecodeError::InvalidBool { offset, .. }
            | DecodeError::NonZeroReserved { offset, .. }
            | DecodeError::OutOfRange { offset, .. } => offset,
            _ => NO_OFFSET,
        }
    }

    /// The name of the field at fault, looked up in the layouts (for logs).
    pub fn field_name(&self) -> Option<&'static str> {
        crate::catalog::field_name(self.template_id(), self.offset())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            DecodeError::BadLength {
                template_id,
                declared,
            } => {
                write!(f, "template {template_id}: impossible length {declared}")
            }
            DecodeError::TrailingBytes { extra } => write!(f, "{extra} trailing bytes"),
            DecodeError::UnknownTemplate { template_id } => {
                write!(f, "unknown template {template_id}")
            }
            DecodeError::UnexpectedTemplate { template_id } => {
                write!(f, "template {template_id} not accepted here")
            }
            DecodeError::WrongSchema {
                template_id,
                schema_id,
            } => {
                write!(f, "template {template_id}: wrong schema {schema_id}")
            }
            DecodeError::UnsupportedVersion { version } => {
                write!(f, "unsupported version {version}")
            }
            DecodeError::InvalidEnum {
                template_id,
                offset,
                value,
            } => write!(
                f,
                "template {template_id} offset {offset} ({}): invalid enum value {value}",
                self.field_name().unwrap_or("?")
            ),
            DecodeError::InvalidBool {
                template_id,
                offset,
                value,
            } => write!(
                f,
                "template {template_id} offset {offset} ({}): invalid bool {value}",
                self.field_name().unwrap_or("?")
            ),
            DecodeError::NonZeroReserved {
                template_id,
                offset,
            } => {
                write!(f, "template {template_id}: reserved byte {offset} not zero")
            }
            DecodeError::OutOfRange {
                template_id,
                offset,
            } => write!(
                f,
                "template {template_id} offset {offset} ({}): value out of range",
                self.field_name().unwrap_or("?")
            ),
            DecodeError::ChecksumMismatch { stored, computed } => {
                write!(
                    f,
                    "crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a value could not be encoded. Encoding never allocates and never panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// The caller's buffer is shorter than the message.
    BufferTooSmall { needed: usize, available: usize },
    /// A field holds a value the decoder would reject (a zero quantity, `Some(0xFFFF_FFFF)` as
    /// an optional instrument, ...), so it is not put on the wire.
    InvalidField { template_id: u16, offset: u16 },
    /// A packet already holds `u16::MAX` messages or `u16::MAX` bytes.
    PacketFull,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            EncodeError::InvalidField {
                template_id,
                offset,
            } => {
                write!(
                    f,
                    "template {template_id}: invalid value at offset {offset}"
                )
            }
            EncodeError::PacketFull => write!(f, "packet full"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A field-level failure, before the decoder adds where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum FieldError {
    InvalidEnum(u8),
    InvalidBool(u8),
    OutOfRange,
}

impl FieldError {
    #[cold]
    pub fn at(self, template_id: u16, offset: u16) -> DecodeError {
        match self {
            FieldError::InvalidEnum(value) => DecodeError::InvalidEnum {
                template_id,
                offset,
                value,
            },
            FieldError::InvalidBool(value) => DecodeError::InvalidBool {
                template_id,
                offset,
                value,
            },
            FieldError::OutOfRange => DecodeError::OutOfRange {
                template_id,
                offset,
            },
        }
    }
}
