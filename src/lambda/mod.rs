//! Lambda naming rules and the shape of an `Invoke` request.

pub mod api_error;
pub mod aws_error;
pub mod events;
mod function_name;
mod invoke;
mod options;
pub mod unwrap;

pub use function_name::{
    check_region as check_region_code, partition_of, shown_name, FunctionName, NameError, Qualifier,
};
pub use invoke::{invoke_path, LAMBDA_ASYNC_PAYLOAD_LIMIT, LAMBDA_SYNC_PAYLOAD_LIMIT};
pub use options::{
    encode_client_context, InvocationType, InvokeOptions, InvokeOverrides, LogType, RequestFormat,
    ResponseFormat,
};
