//! Channels on this process: one [`ChannelRegistry`](channel_registry::ChannelRegistry)
//! per worker thread, channel → the outlets of that thread's subscribers, fed by the
//! [`HubBridge`](crate::hub::bridge::HubBridge).

pub mod channel_registry;
