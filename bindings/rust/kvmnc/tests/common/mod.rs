// SPDX-License-Identifier: LGPL-2.1-or-later
//! Shared by the live tests (and, through #[path], the example VMM).
pub mod kvm;
