"""Load tiles from PostgreSQL: a dataset_explorer tile table -> patch footprint layer."""

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsDataSourceUri,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterAuthConfig,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterProviderConnection,
    QgsProcessingParameterString,
    QgsProviderRegistry,
)

from ...balanced_sampling_plugin.contract import DEFAULT_STATEMENT_TIMEOUT, ON_MISSING
from ...balanced_sampling_plugin.contract import DEFAULT_TILE_COLUMNS as DEFAULT_COLUMNS
from ...balanced_sampling_plugin.dependencies import RASTERS
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..utils import engine_errors, engine_progress
from .base import BalancedSamplingAlgorithm, raster_reads


class LoadTilesFromPostgres(BalancedSamplingAlgorithm):
    CONNECTION = "CONNECTION"
    HOST = "HOST"
    PORT = "PORT"
    DATABASE = "DATABASE"
    USER = "USER"
    PASSWORD = "PASSWORD"
    AUTHCFG = "AUTHCFG"
    TABLE = "TABLE"
    WHERE_CLAUSE = "WHERE_CLAUSE"
    NODATA_CLASS = "NODATA_CLASS"
    ON_MISSING = "ON_MISSING"
    STATEMENT_TIMEOUT = "STATEMENT_TIMEOUT"
    OUTPUT = "OUTPUT"

    group_key = "patches"
    required_modules = RASTERS + ("psycopg2",)
    icon_name = "load_tiles_from_postgres.svg"

    def name(self):
        return "loadtilesfrompostgres"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Load tiles from PostgreSQL")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Reads the patch records of a dataset_explorer tile table and writes them as a patch footprint layer. "
            "Pre-computed class_dist (JSON: class value → share or pixel count) becomes cls_&lt;c&gt; proportion "
            "fields, used directly by Compute composition clusters (no mask is read); uniqueness_score, "
            "class_entropy and nodata_ratio become fields that Combine sampler weights uses.\n\n"
            "<b>Connection</b>: a PostgreSQL connection saved in QGIS (its authentication configuration is used), "
            "or host, port, database, user and password / authentication configuration. The session is "
            "read-only.\n<b>Table</b>: name or schema.name.\n<b>Where clause</b>: an SQL condition such as "
            "nodata_ratio &lt; 0.05; it cannot write (read-only session, no statement separators).\n"
            "<b>Column names</b> (advanced): the table's columns for each role; the optional ones "
            "(class_dist, uniqueness_score, class_entropy, nodata_ratio, id) are skipped when the table lacks them, "
            "unless you changed their name.\n"
            "<b>Statement timeout</b> (advanced): seconds a query may run on the server before it is stopped "
            "(0 = no limit); cancelling also stops the running query.\n"
            "<b>Nodata class</b>: the class_dist entry that is nodata (left out of the proportions).\n"
            "<b>Records whose raster is missing</b>: fail, or skip and list them."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterProviderConnection(
            self.CONNECTION, self.tr("QGIS PostgreSQL connection"), "postgres", optional=True))
        self.addParameter(QgsProcessingParameterString(self.HOST, self.tr("Host"), defaultValue="localhost",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.PORT, self.tr("Port"), QgsProcessingParameterNumber.Integer, defaultValue=5432, minValue=1,
            maxValue=65535))
        self.addParameter(QgsProcessingParameterString(self.DATABASE, self.tr("Database"),
                                                       defaultValue="dataset_explorer", optional=True))
        self.addParameter(QgsProcessingParameterString(self.USER, self.tr("User"), defaultValue="postgres",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterString(self.PASSWORD, self.tr("Password"), optional=True))
        self.addParameter(QgsProcessingParameterAuthConfig(
            self.AUTHCFG, self.tr("Authentication configuration"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.TABLE, self.tr("Table"), defaultValue="tiles"))
        self.addParameter(QgsProcessingParameterString(self.WHERE_CLAUSE, self.tr("Where clause"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.NODATA_CLASS, self.tr("Nodata class"), QgsProcessingParameterNumber.Integer, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.ON_MISSING, self.tr("Records whose raster is missing"),
            options=[self.tr("Fail"), self.tr("Skip and report")], defaultValue=0))
        for role, column in DEFAULT_COLUMNS.items():
            parameter = QgsProcessingParameterString(
                self.column_parameter(role), self.tr("Column for {}").format(role), defaultValue=column,
                optional=True)
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        timeout = QgsProcessingParameterNumber(
            self.STATEMENT_TIMEOUT, self.tr("Statement timeout (seconds, 0 = none)"),
            QgsProcessingParameterNumber.Integer, defaultValue=DEFAULT_STATEMENT_TIMEOUT, minValue=0)
        timeout.setFlags(timeout.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(timeout)
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Patch footprints"), QgsProcessing.TypeVectorPolygon))

    @staticmethod
    def column_parameter(role: str) -> str:
        return f"{role.upper()}_COLUMN"

    def connection(self, parameters, context) -> dict:
        """libpq keywords from a saved QGIS connection or the explicit parameters (explicit ones win)."""
        settings = {}
        name = self.parameterAsConnectionName(parameters, self.CONNECTION, context)
        authcfg = self.parameterAsString(parameters, self.AUTHCFG, context)
        if name:
            metadata = QgsProviderRegistry.instance().providerMetadata("postgres")
            try:
                saved = metadata.findConnection(name)
            except Exception:  # QgsProviderConnectionException: unknown name
                saved = None
            if saved is None:
                raise QgsProcessingException(self.tr("No PostgreSQL connection named '{}' in QGIS.").format(name))
            uri = QgsDataSourceUri(saved.uri())
            settings = {"host": uri.host(), "port": uri.port(), "dbname": uri.database(), "user": uri.username(),
                        "password": uri.password()}
            authcfg = authcfg or uri.authConfigId()
        for key, parameter in (("host", self.HOST), ("dbname", self.DATABASE), ("user", self.USER),
                               ("password", self.PASSWORD)):
            value = self.parameterAsString(parameters, parameter, context)
            if value and (not name or parameter in parameters):
                settings[key] = value
        if not name or self.PORT in parameters:
            settings["port"] = self.parameterAsInt(parameters, self.PORT, context)
        if authcfg:
            config = QgsAuthMethodConfig()
            if not QgsApplication.authManager().loadAuthenticationConfig(authcfg, config, True):
                raise QgsProcessingException(self.tr("Authentication configuration '{}' cannot be read.")
                                             .format(authcfg))
            settings["user"] = config.config("username") or settings.get("user", "")
            settings["password"] = config.config("password") or settings.get("password", "")
        return {key: value for key, value in settings.items() if value not in (None, "")}

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        from ...balanced_sampling_plugin.sources import load_tiles, record_footprints

        # Only the roles the user renamed count as named: an optional role left at its default name is
        # skipped when the table lacks that column, a renamed one must exist.
        columns = {}
        for role, default in DEFAULT_COLUMNS.items():
            name = self.parameterAsString(parameters, self.column_parameter(role), context).strip()
            if name and name != default:
                columns[role] = name
        output = self.output_file(parameters, context)
        self.check_paths({self.OUTPUT: output})
        progress = engine_progress(feedback)
        with engine_errors():
            tiles = load_tiles(
                self.connection(parameters, context),
                table=self.parameterAsString(parameters, self.TABLE, context),
                where_clause=self.parameterAsString(parameters, self.WHERE_CLAUSE, context),
                columns=columns, nodata_class=self.parameterAsInt(parameters, self.NODATA_CLASS, context),
                progress=progress.child(0, 0.4),
                statement_timeout=self.parameterAsInt(parameters, self.STATEMENT_TIMEOUT, context))
            self.check_paths({self.OUTPUT: output}, raster_reads(tiles), writable=False)
            footprints = record_footprints(
                tiles, ON_MISSING[self.parameterAsEnum(parameters, self.ON_MISSING, context)],
                progress.child(0.4, 0.6))
        for missing in footprints.missing:
            feedback.reportError(self.tr("Raster not found, its tiles were skipped: {}").format(missing), False)
        feedback.pushInfo(self.tr("{} tiles loaded").format(len(footprints.records)))
        with OutputFiles() as outputs:
            dest_id = self.write_patch_layer(parameters, context, feedback, footprints.records, footprints.rings,
                                             footprints.crs_authid, footprints.crs_wkt, outputs,
                                             progress_span=(60.0, 100.0))
            self.commit(outputs, feedback)
        return {self.OUTPUT: dest_id}
