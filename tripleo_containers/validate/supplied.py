"""Parameters a real tripleo-heat-templates tree leaves unset on purpose.

The deployment plan (tripleo-common) generates every password and key of its
PASSWORD_PARAMETER_NAMES list when the plan is created, and
`openstack overcloud deploy` (or, on Train, the plan) sets a few more; no
environment a user writes sets them, so a missing one is not a finding.
Names carried over from tripleo-common 7.6.18 (Pike) and 11.5.0 (Train)
constants.py and python-tripleoclient 7.3.15 / stable/train
overcloud_deploy.py. Image parameters are never in these lists: only
prepare writes them.
"""

_BOTH = (
    "AdminPassword", "AdminToken", "AodhPassword", "BarbicanPassword",
    "CeilometerMeteringSecret", "CeilometerPassword", "CephClientKey",
    "CephClusterFSID", "CephManilaClientKey", "CephRgwKey", "CinderPassword",
    "CongressPassword", "Ec2ApiPassword", "EtcdInitialClusterToken",
    "GlancePassword", "GnocchiPassword", "HAProxyStatsPassword", "HeatPassword",
    "HeatStackDomainAdminPassword", "IronicPassword", "KeystoneCredential0",
    "KeystoneCredential1", "KeystoneFernetKey0", "KeystoneFernetKey1",
    "KeystoneFernetKeys", "LibvirtTLSPassword", "ManilaPassword",
    "MigrationSshKey", "MistralPassword", "MysqlClustercheckPassword",
    "NeutronMetadataProxySharedSecret", "NeutronPassword", "NovaPassword",
    "NovajoinPassword", "OctaviaHeartbeatKey", "OctaviaPassword",
    "PacemakerRemoteAuthkey", "PankoPassword", "RabbitPassword", "RedisPassword",
    "SaharaPassword", "SnmpdReadonlyUserPassword", "SwiftHashSuffix",
    "SwiftPassword", "ZaqarPassword",
)

GENERATED = {
    "pike": frozenset(_BOTH + (
        "CephAdminKey", "CephMdsKey", "CephMonKey", "TackerPassword",
        "TrovePassword")),
    # Train also generates what Pike's overcloud.yaml still made as Heat
    # resources (MysqlRootPassword, RabbitCookie, ...).
    "train": frozenset(_BOTH + (
        "BarbicanSimpleCryptoKek", "CephDashboardAdminPassword",
        "CephGrafanaAdminPassword", "DesignatePassword", "DesignateRndcKey",
        "HeatAuthEncryptionKey", "HorizonSecret", "MysqlRootPassword",
        "NotifyPassword", "OctaviaCaKeyPassphrase",
        "OctaviaServerCertsKeyPassphrase", "OpenDaylightPassword", "PcsdPassword",
        "PlacementPassword", "RabbitCookie", "RpcPassword")),
}

BY_DEPLOY = {
    "pike": frozenset(("UpdateIdentifier", "StackAction", "DeployIdentifier")),
    # RootStackName: Train's plan workbook (plan_management.yaml) sets it
    "train": frozenset(("UpdateIdentifier", "StackAction", "DeployIdentifier",
                        "UseTLSTransportForNbd", "RootStackName")),
}


def release_of(image_params):
    """Train's templates name images Container<X>Image, Pike's Docker<X>Image."""
    return "train" if any(p.startswith("Container") for p in image_params) else "pike"
