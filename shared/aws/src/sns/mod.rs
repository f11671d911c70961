//! The SNS adapters: the notifier of the alerts topic ([`SnsNotifier`]) and the lookup of a
//! topic's ARN by its name ([`topic_arn_by_name`]).

mod batch;
mod notifier;
mod request;
mod topics;

pub use notifier::SnsNotifier;
pub use topics::topic_arn_by_name;
