//! `Community`: named BGP community values usable in `BGPAdvertisement.spec.communities`.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::status::ConfigStatus;

/// Regular expression a community value must match: `A:B` (16-bit halves) or
/// `large:A:B:C` (32-bit parts). Numeric ranges are checked by `ferrolb-config`.
pub const COMMUNITY_VALUE_REGEX: &str =
    r"^([0-9]{1,5}:[0-9]{1,5}|large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10})$";

/// Named community aliases.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "Community",
    plural = "communities",
    namespaced,
    status = "ConfigStatus",
    category = "ferrolb",
    doc = "Named BGP community values that BGPAdvertisements can refer to by name."
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "self.communities.all(c, self.communities.exists_one(d, d.name == c.name))"
).message("community alias names must be unique").field_path(".communities"))]
pub struct CommunitySpec {
    /// The aliases.
    #[serde(default)]
    pub communities: Vec<CommunityAlias>,
}

/// One alias.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct CommunityAlias {
    /// Alias name used in BGPAdvertisements.
    #[x_kube(validation = kube::core::Rule::new("size(self) > 0 && !self.contains(':')").message("alias name must be non-empty and contain no ':'"))]
    pub name: String,
    /// `A:B` or `large:A:B:C`.
    #[x_kube(validation = kube::core::Rule::new(
        "self.matches('^([0-9]{1,5}:[0-9]{1,5}|large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10})$')"
    ).message("value must be A:B or large:A:B:C"))]
    pub value: String,
}
