//! Lambda naming rules and the shape of an `Invoke` request.

mod function_name;
mod invoke;

pub use function_name::{check_region as check_region_code, FunctionName, NameError, Qualifier};
pub use invoke::{invoke_path, LAMBDA_SYNC_PAYLOAD_LIMIT};
