//! Lambda naming rules and the shape of an `Invoke` request.

pub mod api_error;
pub mod aws_error;
pub mod events;
mod function_name;
mod invoke;
mod name_error;
mod options;
mod region;
pub mod unwrap;

pub use function_name::{is_function_name, shown_name, FunctionName, Qualifier};
pub use invoke::{invoke_path, LAMBDA_ASYNC_PAYLOAD_LIMIT, LAMBDA_SYNC_PAYLOAD_LIMIT};
pub use name_error::NameError;
pub use options::{
    encode_client_context, InvocationType, InvokeOptions, InvokeOverrides, LogType, RequestFormat,
    ResponseFormat,
};
pub use region::{partition_of, Partition, Region};
