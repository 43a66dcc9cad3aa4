"""The public contract, in plain Python: field names, and the option lists that QGIS enums, saved
models and ``qgis_process`` calls store by position.

No numpy or pandas here: the QGIS side builds its parameters from this module while the heavy
packages may still be missing (each algorithm checks for them before it runs). Option lists are
append-only; renaming a field or reordering an option breaks users.
"""

# --------------------------------------------------------------------------- fields of the patch table
IMAGE_PATH = "image_path"
MASK_PATH = "mask_path"
ROW_OFF = "row_off"
COL_OFF = "col_off"
PATCH_SIZE = "patch_size"
PATCH_ID = "patch_id"
#: The columns a patch record must carry, in order.
RECORD_COLUMNS = (IMAGE_PATH, MASK_PATH, ROW_OFF, COL_OFF, PATCH_SIZE)
WINDOW_COLUMNS = (ROW_OFF, COL_OFF, PATCH_SIZE)

CLASS_ENTROPY = "class_entropy"
NODATA_RATIO = "nodata_ratio"
BORDER_NODATA = "border_nodata"
BLACK_BORDER = "black_border"
EXCLUDED = "excluded"
EXCLUSION_REASON = "exclusion_reason"
FREQ_CLUSTER_ID = "freq_cluster_id"
FREQ_CLUSTER_SIZE = "freq_cluster_size"
FREQ_CLUSTER_WEIGHT = "freq_cluster_weight"
UNIQUENESS_SCORE = "uniqueness_score"
SAMPLER_WEIGHT = "sampler_weight"
CLASS_PREFIX = "cls_"

# --------------------------------------------------------------------------- options (append only)
SAMPLING_METHODS = (
    "rank_max",
    "rank_multiply",
    "rank_add",
    "multiplicative",
    "composition_only",
    "uniqueness_only",
    "class_balanced",
    "target_shares",
    "repeat_factor",
    "rare_class_sampling",
)
#: Other names a config's sampling_method may use: alias -> (method, options it implies).
METHOD_ALIASES = {"sqrt_inverse_freq": ("class_balanced", {"class_alpha": 0.5})}
#: The signals each method reads ("classes": the cls_<value> proportions); class_balanced also reads
#: "uniqueness" when its uniqueness mix is above 0.
METHOD_SIGNALS = {
    "rank_max": ("composition", "uniqueness"),
    "rank_multiply": ("composition", "uniqueness"),
    "rank_add": ("composition", "uniqueness"),
    "multiplicative": ("composition", "uniqueness"),
    "composition_only": ("composition",),
    "uniqueness_only": ("uniqueness",),
    "class_balanced": ("classes",),
    "target_shares": ("classes",),
    "repeat_factor": ("classes",),
    "rare_class_sampling": ("classes",),
}
#: kNN backends of the uniqueness score: backend -> (module to import, pip package name).
BACKEND_PACKAGES = {
    "hnsw": ("hnswlib", "hnswlib"),
    "faiss": ("faiss", "faiss-cpu"),
    "sklearn": ("sklearn.neighbors", "scikit-learn"),
    "nndescent": ("faiss", "faiss-cpu"),
    "torch": ("torch", "torch"),
}
BACKENDS = tuple(BACKEND_PACKAGES)
DEFAULT_BACKEND = "nndescent"
K_SELECTIONS = ("elbow", "fixed")
PRECISIONS = ("fp32", "bf16", "int8", "fp16", "auto")
#: Windows at a raster's edge: dropped, or shifted inward.
EDGE_MODES = ("drop", "shift")
#: Records whose raster is missing: fail, or skip and list them.
ON_MISSING = ("fail", "skip")

#: Column roles of a dataset_explorer tile table and their default column names.
DEFAULT_TILE_COLUMNS = {
    "file_path": "file_path",
    "mask_path": "mask_path",
    "row_off": "row_off",
    "col_off": "col_off",
    "patch_size": "patch_size",
    "class_dist": "class_dist",
    "uniqueness_score": "uniqueness_score",
    "class_entropy": "class_entropy",
    "nodata_ratio": "nodata_ratio",
    "id": "id",
}
#: Seconds a PostgreSQL statement may run before the server stops it (0 = no limit).
DEFAULT_STATEMENT_TIMEOUT = 600

# --------------------------------------------------------------------------- coreset selection (issue 15)
#: Fields written by Select coreset.
CORESET_SCORE = "coreset_score"
CORESET_SELECTED = "coreset_selected"
SELECTION_STEP = "selection_step"
#: Pick order of the selected patches across all steps (1 = first; 0 = not selected).
SELECTION_RANK = "selection_rank"
#: The six scoring methods of pytorch-smt-tools' select-coreset, in this order (append only).
CORESET_METHODS = ("lc", "cb", "fd", "fa", "lc_fd", "fa_cb")
#: The methods that read the DINOv2 embeddings (embedding cache Parquet).
CORESET_EMBEDDING_METHODS = ("fd", "fa", "lc_fd", "fa_cb")
#: A budget is a fraction of the pool or a number of patches.
BUDGET_MODES = ("fraction", "count")
#: Values of selection_step: the vector step, the method (its name), the fill by class entropy.
VECTOR_STEP = "vector"
FILL_STEP = "fill"
