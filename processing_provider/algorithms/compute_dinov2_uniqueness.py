"""Compute DINOv2 uniqueness: CLS embeddings of every image patch -> cosine kNN -> uniqueness_score."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ...balanced_sampling_plugin.contract import BACKENDS, PRECISIONS, UNIQUENESS_SCORE
from ...balanced_sampling_plugin.dependencies import BACKEND_MODULES, EMBEDDINGS
from ...balanced_sampling_plugin.file_safety import OutputFiles, files_under
from ..dask_scheduler import dask_scheduler_parameter, scheduler_text
from ..layers import read_table
from ..parameters import (
    PRECISION_LABELS,
    add_record_field_parameters,
    knn_backend_parameter,
    labelled_enum,
    record_field_map,
    with_decimals,
)
from ..styles import GraduatedStyle
from ..utils import engine_errors, engine_progress
from .base import BalancedSamplingAlgorithm, raster_reads

IMAGE_FIELDS = ("IMAGE_PATH_FIELD", "ROW_OFF_FIELD", "COL_OFF_FIELD", "PATCH_SIZE_FIELD")


class ComputeDinov2Uniqueness(BalancedSamplingAlgorithm):
    INPUT = "INPUT"
    DINO_MODEL = "DINO_MODEL"
    BATCH_SIZE = "BATCH_SIZE"
    NUM_WORKERS = "NUM_WORKERS"
    USE_GPU = "USE_GPU"
    PARQUET_PATH = "PARQUET_PATH"
    K_NEIGHBORS = "K_NEIGHBORS"
    BACKEND = "BACKEND"
    REPRODUCIBLE = "REPRODUCIBLE"
    BANDS = "BANDS"
    STRETCH_LOW = "STRETCH_LOW"
    STRETCH_HIGH = "STRETCH_HIGH"
    STRETCH_VALUES = "STRETCH_VALUES"
    PRECISION = "PRECISION"
    OUTPUT = "OUTPUT"
    COMPUTED = "COMPUTED"
    REUSED = "REUSED"

    group_key = "signals"
    required_modules = EMBEDDINGS
    added_fields = (UNIQUENESS_SCORE,)
    icon_name = "compute_dinov2_uniqueness.svg"

    def name(self):
        return "computedinov2uniqueness"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Compute DINOv2 uniqueness")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.with_in_place_help(self.tr(
            "Embeds every image patch with a DINOv2 model (CLS token) and scores how visually unique it is: "
            "uniqueness_score is the mean cosine distance to its k nearest other patches (0 = a patch has exact "
            "look-alikes, higher = more unique). Writes all input fields plus uniqueness_score.\n\n"
            "<b>DINOv2 model</b>: dinov2-small, dinov2-base or dinov2-large (facebook/dinov2-*), any Hugging Face "
            "model id, or a local folder saved with save_pretrained. Without internet, download the model once "
            "on a connected machine (AutoModel/AutoImageProcessor .save_pretrained(folder)) and give the folder.\n"
            "<b>Batch size</b>: patches per forward pass. <b>Parallel readers</b>: threads reading windows ahead "
            "of the model. <b>Use GPU</b>: CUDA when available, else CPU (the log says which).\n"
            "<b>Embedding cache</b>: optional Parquet file, or a folder (an existing one, or a path typed with a "
            "trailing /) holding the cache as parts, one per save. A re-run reuses the embeddings of patches (image "
            "path + window) already cached for the same model and computes only the missing ones; a damaged cache "
            "is reported and rebuilt.\n"
            "<b>Neighbours (k)</b>: how many nearest patches are averaged (default 5).\n"
            "<b>kNN backend</b>: nndescent (default: NN-Descent neighbour graph re-scored exactly, the fastest for "
            "large datasets: ~13-18 s for 155 000 patches on 2 cores, recall@5 ≥ 0.99; the first run on a machine "
            "also compiles its kernels once, about a minute), hnsw "
            "(hnswlib, approximate, about 3x slower), faiss (exact inner product), sklearn (exact, brute force).\n"
            "<b>Reproducible kNN</b>: identical scores every run. From 50 000 patches nndescent's graph (pynndescent) "
            "is the same every run on a given number of threads and keeps its speed; below, faiss builds it and "
            "can pick a different neighbour for about 1% of patches from one run to the next (near-ties; scores "
            "agree at Spearman 0.99999), so it then runs on one thread, about 2x slower. The other backends are "
            "reproducible anyway.\n"
            "<b>Bands</b>: the three image bands fed to the model (1-band imagery is replicated). "
            "<b>Stretch percentiles</b>: imagery that is not 8-bit is scaled with one dataset-wide percentile "
            "stretch, so patches stay comparable. It is estimated from the patches, so adding patches moves it a "
            "little and recomputes every cached embedding: <b>Fixed stretch values</b> (e.g. 0,3000 for Sentinel-2 "
            "reflectance, or one low and high per band) keep it, and the cache, as the dataset grows.\n"
            "<b>Precision</b>: auto (the default) is bf16 where the CPU or GPU computes bfloat16 natively, else "
            "fp32 on the CPU and fp16 on a GPU; int8 quantises the model's linear layers (CPU only, the fastest "
            "there); fp32 is full precision. On the benchmark set bf16 and int8 kept the uniqueness ranking of fp32 at "
            "Spearman ≥ 0.998 and ran 1.5x and 1.9-2.5x faster (docs/benchmarks.md). Embeddings of each precision "
            "are cached apart.\n"
            "<b>Dask scheduler</b>: empty computes the embeddings in this process; local:N starts a Dask cluster "
            "of N worker processes on this machine; a scheduler address (tcp://host:8786) sends them to its "
            "workers, each loading the model once (on its GPU with Use GPU). Workers must see the images and a "
            "model folder at the same paths. An embedding cache given as a folder is written by the workers, one part "
            "per task, so a re-run after a failure computes only what is missing."
        ))

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Patch footprints"), [QgsProcessing.TypeVector]))
        self.addParameter(QgsProcessingParameterString(
            self.DINO_MODEL, self.tr("DINOv2 model (short name, hub id or local folder)"),
            defaultValue="dinov2-base"))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, self.tr("Batch size"), QgsProcessingParameterNumber.Integer, defaultValue=32, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.NUM_WORKERS, self.tr("Parallel readers"), QgsProcessingParameterNumber.Integer,
            defaultValue=2, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean(self.USE_GPU, self.tr("Use GPU"), defaultValue=False))
        cache = QgsProcessingParameterFileDestination(
            self.PARQUET_PATH, self.tr("Embedding cache (Parquet)"), self.tr("Parquet files (*.parquet)"),
            optional=True, createByDefault=False)
        self.addParameter(cache)
        self.addParameter(QgsProcessingParameterNumber(
            self.K_NEIGHBORS, self.tr("Neighbours (k)"), QgsProcessingParameterNumber.Integer,
            defaultValue=5, minValue=1))
        self.addParameter(knn_backend_parameter(self.BACKEND, self.tr("kNN backend")))
        advanced = [
            QgsProcessingParameterString(self.BANDS, self.tr("Bands (comma-separated)"), defaultValue="1,2,3"),
            with_decimals(QgsProcessingParameterNumber(
                self.STRETCH_LOW, self.tr("Stretch low percentile"), QgsProcessingParameterNumber.Double,
                defaultValue=2, minValue=0, maxValue=100), 1),
            with_decimals(QgsProcessingParameterNumber(
                self.STRETCH_HIGH, self.tr("Stretch high percentile"), QgsProcessingParameterNumber.Double,
                defaultValue=98, minValue=0, maxValue=100), 1),
            QgsProcessingParameterString(
                self.STRETCH_VALUES, self.tr("Fixed stretch values (low,high or l1,l2,l3;h1,h2,h3; empty = "
                                             "percentiles)"), defaultValue="", optional=True),
            labelled_enum(self.PRECISION, self.tr("Precision"), PRECISIONS, PRECISION_LABELS, "auto"),
            QgsProcessingParameterBoolean(
                self.REPRODUCIBLE, self.tr("Reproducible kNN (identical scores every run)"), defaultValue=False),
            dask_scheduler_parameter(),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        add_record_field_parameters(self, self.INPUT, IMAGE_FIELDS)
        self.add_in_place_parameter()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Uniqueness"), QgsProcessing.TypeVectorAnyGeometry,
            optional=True, createByDefault=True))  # optional: not written with IN_PLACE
        self.addOutput(QgsProcessingOutputNumber(self.COMPUTED, self.tr("Patches embedded in this run")))
        self.addOutput(QgsProcessingOutputNumber(self.REUSED, self.tr("Patches taken from the cache")))

    def _bands(self, parameters, context):
        from ...balanced_sampling_plugin.patch_images import bands_from_text

        with engine_errors():
            return bands_from_text(self.parameterAsString(parameters, self.BANDS, context))

    def modules_needed(self, parameters, context) -> tuple:
        backend = BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)]
        return super().modules_needed(parameters, context) + (BACKEND_MODULES[backend],)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        from ...balanced_sampling_plugin.embedding_cache import cache_output
        from ...balanced_sampling_plugin.records import validate_records
        from ...balanced_sampling_plugin.uniqueness_stage import compute_uniqueness

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        stretch = (self.parameterAsDouble(parameters, self.STRETCH_LOW, context),
                   self.parameterAsDouble(parameters, self.STRETCH_HIGH, context))
        if stretch[0] >= stretch[1]:
            raise QgsProcessingException(self.tr("The stretch low percentile must be below the high one."))
        from ...balanced_sampling_plugin.patch_images import stretch_from_text

        with engine_errors():  # fixed values replace the percentiles: the same stretch whatever the patch list
            stretch = stretch_from_text(self.parameterAsString(parameters, self.STRETCH_VALUES, context)) or stretch
        bands = self._bands(parameters, context)
        parquet_path = self.parameterAsFileOutput(parameters, self.PARQUET_PATH, context) or None
        writes = {self.OUTPUT: self.output_file(parameters, context), self.PARQUET_PATH: cache_output(parquet_path)}
        model = self.parameterAsString(parameters, self.DINO_MODEL, context).strip() or "dinov2-base"
        self.check_paths(writes, {self.INPUT: self.input_file(parameters, context),
                                  self.DINO_MODEL: files_under(model),
                                  # a read-only cache is only read (cache_output gives None): no output over it
                                  self.PARQUET_PATH: parquet_path if writes[self.PARQUET_PATH] is None else None})
        table = read_table(source, record_field_map(self, parameters, context, IMAGE_FIELDS), feedback)
        progress = engine_progress(feedback)
        with engine_errors():
            records = validate_records(table, required=("image_path", "row_off", "col_off", "patch_size"),
                                       source=self.tr("the input layer"))
            self.check_paths(writes, raster_reads(records), writable=False)
            result = compute_uniqueness(
                records,
                dino_model=model,
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                num_workers=self.parameterAsInt(parameters, self.NUM_WORKERS, context),
                use_gpu=self.parameterAsBool(parameters, self.USE_GPU, context),
                parquet_path=parquet_path,
                k_neighbors=self.parameterAsInt(parameters, self.K_NEIGHBORS, context),
                backend=BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)],
                bands=bands, stretch=stretch,
                progress=progress.child(0.05, 0.9),
                precision=PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
                reproducible=self.parameterAsBool(parameters, self.REPRODUCIBLE, context),
                executor=scheduler_text(self, parameters, context) or None,  # text: opened and closed by the engine
            )
        feedback.pushInfo(self.tr("{} patches embedded, {} taken from the cache; k = {}, backend {}")
                          .format(result.computed, result.reused, result.k_neighbors, result.backend))
        with OutputFiles() as outputs:
            dest_id = self.write_output(parameters, context, feedback, source, result.table, outputs,
                                        GraduatedStyle(UNIQUENESS_SCORE, ramp="Magma"))
            self.commit(outputs, feedback)
        return {self.OUTPUT: dest_id, self.COMPUTED: result.computed, self.REUSED: result.reused,
                self.PARQUET_PATH: parquet_path}
