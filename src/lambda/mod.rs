//! Lambda naming rules and the shape of an `Invoke` request.

pub mod api_error;
pub mod aws_error;
pub mod events;
pub mod eventstream;
mod function_name;
mod invoke;
mod name_error;
mod options;
mod region;
pub mod report;
pub mod unwrap;

pub use function_name::{FunctionName, Qualifier};
pub(crate) use function_name::{is_function_name, shown_name};
pub(crate) use invoke::{
    LAMBDA_ASYNC_PAYLOAD_LIMIT, LAMBDA_SYNC_PAYLOAD_LIMIT, invoke_path, stream_path,
};
pub use name_error::NameError;
pub(crate) use options::encode_client_context;
pub use options::{
    InvocationType, InvokeMode, InvokeOptions, InvokeOverrides, LogType, RequestFormat,
    ResponseFormat,
};
pub use region::{Partition, Region};
