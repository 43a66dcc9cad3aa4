<?xml version="1.0" encoding="utf-8"?>
<TS version="2.1">
<context>
    <name>@default</name>
    <message>
        <location filename="../processing_provider/dask_scheduler.py" line="26" />
        <source>Dask scheduler</source>
        <translation>Escalonador Dask</translation>
    </message>
    <message>
        <location filename="../processing_provider/dask_scheduler.py" line="28" />
        <source>Empty: run in this process. local:N: a Dask cluster of N worker processes on this machine. Otherwise the address of a Dask scheduler, e.g. tcp://host:8786.</source>
        <translation>Vazio: executa neste processo. local:N: um cluster Dask de N processos de trabalho nesta máquina. Caso contrário, o endereço de um escalonador Dask, por exemplo tcp://host:8786.</translation>
    </message>
    <message>
        <location filename="../processing_provider/dask_scheduler.py" line="52" />
        <source>The Dask scheduler '{}' needs the Python packages {}, which the Python of this QGIS cannot import. Install them with Plugins &gt; Balanced Sampling &gt; Install Python packages… (tick Also install Dask), or in a terminal:
{}
then restart QGIS; or leave the Dask scheduler empty to run in this process.</source>
        <translation>O escalonador Dask '{}' precisa dos pacotes Python {}, que o Python deste QGIS não consegue importar. Instale-os em Complementos &gt; Balanced Sampling &gt; Instalar pacotes Python… (marque Instalar também o Dask), ou em um terminal:
{}
e reinicie o QGIS; ou deixe o escalonador Dask vazio para rodar neste processo.</translation>
    </message>
</context>
<context>
    <name>BalancedSamplingAlgorithm</name>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="68" />
        <source>Patch records</source>
        <translation>Registros de patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="69" />
        <source>Sampling signals</source>
        <translation>Sinais de amostragem</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="70" />
        <source>Sampler weights</source>
        <translation>Pesos do amostrador</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="84" />
        <source>Update the input layer in place (no new layer)</source>
        <translation>Atualizar a camada de entrada diretamente (sem nova camada)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="336" />
        <source>In-place update needs a vector layer as input.</source>
        <translation>A atualização direta exige uma camada vetorial como entrada.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="340" />
        <source>Layer '{}' is in edit mode; save or discard its edits and leave edit mode, then run again.</source>
        <translation>A camada '{}' está em modo de edição; salve ou descarte as edições e saia do modo de edição, depois execute de novo.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="349" />
        <source>In-place update writes all fields or none, which works for GeoPackage layers and temporary layers; layer '{}' ({}) is stored as {}. Write a new layer (Output) instead, or save the layer as a GeoPackage first.</source>
        <translation>A atualização no local grava todos os campos ou nenhum, o que funciona com camadas GeoPackage e camadas temporárias; a camada '{}' ({}) está armazenada como {}. Grave uma nova camada (Saída) ou salve antes a camada como GeoPackage.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="149" />
        <source>{} '{}' exists but no layer can be read from it: the file is damaged or unfinished (for example written by a run that was killed). Create it again.</source>
        <translation>{} '{}' existe, mas nenhuma camada pode ser lida dele: o arquivo está danificado ou incompleto (por exemplo, gravado por uma execução que foi interrompida). Crie-o de novo.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="113" />
        <source>{} needs the Python packages {}, which the Python of this QGIS cannot import. Install them from the menu Plugins &gt; Balanced Sampling &gt; Install Python packages…, or in a terminal:
{}
then restart QGIS.</source>
        <translation>{} precisa dos pacotes Python {}, que o Python deste QGIS não consegue importar. Instale-os pelo menu Complementos &gt; Balanced Sampling &gt; Instalar pacotes Python…, ou num terminal:
{}
e depois reinicie o QGIS.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="146" />
        <source>{} '{}' has no layer '{}'. Check the layer name.</source>
        <translation>{} '{}' não tem a camada '{}'. Confira o nome da camada.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="382" />
        <source>Could not put the output '{}' in place ({}); the earlier files were kept as they were.</source>
        <translation>Não foi possível colocar a saída '{}' no lugar ({}); os arquivos anteriores foram mantidos como estavam.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="172" />
        <source>between {} and {}</source>
        <translation>entre {} e {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="175" />
        <source>at least {}</source>
        <translation>no mínimo {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="177" />
        <source>at most {}</source>
        <translation>no máximo {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="178" />
        <source>{} ({}) is {}; it must be {}.</source>
        <translation>{} ({}) vale {}; deve ficar {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="321" />
        <source>QGIS wrote the output '{}', not '{}' as asked.</source>
        <translation>O QGIS gravou a saída '{}', não '{}' como solicitado.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="92" />
        <source>&lt;b&gt;Update the input layer in place&lt;/b&gt;: writes the fields into the input layer instead of a new one, all or nothing: for GeoPackage layers (one transaction) and temporary layers; other storage, and a layer in edit mode, is refused before any work. The layer keeps its own style. (QGIS's 'Edit Features In-Place' mode of the Toolbox is for algorithms that change features one by one, so it does not list these.)</source>
        <translation>&lt;b&gt;Atualizar a camada de entrada no local&lt;/b&gt;: grava os campos na camada de entrada em vez de numa nova, tudo ou nada: para camadas GeoPackage (uma transação) e camadas temporárias; outros armazenamentos, e uma camada em modo de edição, são recusados antes de qualquer trabalho. A camada mantém seu próprio estilo. (O modo 'Editar feições no local' da Caixa de Ferramentas é para algoritmos que alteram as feições uma a uma, por isso não lista estes.)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/base.py" line="261" />
        <source>The input layer is updated in place, so OUTPUT '{}' is not written; leave it empty, or turn off the in-place update to write a new layer.</source>
        <translation>A camada de entrada é atualizada no próprio lugar, então OUTPUT '{}' não é gravado; deixe-o vazio, ou desative a atualização no próprio lugar para gravar uma nova camada.</translation>
    </message>
</context>
<context>
    <name>BalancedSamplingPlugin</name>
    <message>
        <location filename="../processing_provider/plugin.py" line="62" />
        <source>&amp;Balanced Sampling</source>
        <translation>&amp;Balanced Sampling</translation>
    </message>
    <message>
        <location filename="../processing_provider/plugin.py" line="63" />
        <source>Build balanced dataset…</source>
        <translation>Construir conjunto de dados balanceado…</translation>
    </message>
    <message>
        <location filename="../processing_provider/plugin.py" line="73" />
        <source>Balanced Sampling</source>
        <translation>Balanced Sampling</translation>
    </message>
    <message>
        <location filename="../processing_provider/plugin.py" line="69" />
        <source>Install Python packages…</source>
        <translation>Instalar pacotes Python…</translation>
    </message>
</context>
<context>
    <name>BalancedSamplingProvider</name>
    <message>
        <location filename="../processing_provider/provider.py" line="48" />
        <source>Balanced sampling</source>
        <translation>Amostragem balanceada</translation>
    </message>
</context>
<context>
    <name>BuildBalancedDataset</name>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="61" />
        <source>Build balanced dataset</source>
        <translation>Construir conjunto de dados balanceado</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="91" />
        <source>Image folder</source>
        <translation>Pasta de imagens</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="93" />
        <source>Image file pattern</source>
        <translation>Padrão de arquivo das imagens</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="95" />
        <source>Mask folder</source>
        <translation>Pasta de máscaras</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="97" />
        <source>Mask file pattern</source>
        <translation>Padrão de arquivo das máscaras</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="99" />
        <source>Patch size (pixels)</source>
        <translation>Tamanho do patch (pixels)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="102" />
        <source>Stride (pixels, 0 = patch size)</source>
        <translation>Passo (pixels, 0 = tamanho do patch)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="106" />
        <source>Nodata class</source>
        <translation>Classe sem dados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="114" />
        <source>Compute DINOv2 uniqueness</source>
        <translation>Calcular singularidade DINOv2</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="116" />
        <source>DINOv2 model (short name, hub id or local folder)</source>
        <translation>Modelo DINOv2 (nome curto, id no hub ou pasta local)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="121" />
        <source>Embedding cache (Parquet)</source>
        <translation>Cache de embeddings (Parquet)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="121" />
        <source>Parquet files (*.parquet)</source>
        <translation>Arquivos Parquet (*.parquet)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="124" />
        <source>kNN backend</source>
        <translation>Backend kNN</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="125" />
        <source>Sampling method</source>
        <translation>Método de amostragem</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="126" />
        <source>Sampler weights</source>
        <translation>Pesos do amostrador</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="128" />
        <source>Training CSV</source>
        <translation>CSV de treinamento</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="128" />
        <source>CSV files (*.csv)</source>
        <translation>Arquivos CSV (*.csv)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="130" />
        <source>Report</source>
        <translation>Relatório</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="130" />
        <source>HTML files (*.html)</source>
        <translation>Arquivos HTML (*.html)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="133" />
        <source>Effective sample size</source>
        <translation>Tamanho efetivo da amostra</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="156" />
        <source>Sampling method {} does not read uniqueness, so DINOv2 uniqueness is not computed (it would not change the weights).</source>
        <translation>O método de amostragem {} não usa a singularidade, então a singularidade DINOv2 não é calculada (não mudaria os pesos).</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="105" />
        <source>Windows at the raster edge</source>
        <translation>Janelas na borda do raster</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="119" />
        <source>Bands (comma-separated)</source>
        <translation>Bandas (separadas por vírgula)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="152" />
        <source>Sampling method {} reads DINOv2 uniqueness, which 'Compute DINOv2 uniqueness' turns off: tick it, or pick class_balanced or composition_only, which need no DINOv2.</source>
        <translation>O método de amostragem {} lê a singularidade DINOv2, que 'Calcular singularidade DINOv2' desativa: marque essa opção, ou escolha class_balanced ou composition_only, que não precisam do DINOv2.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_balanced_dataset.py" line="64" />
        <source>Runs the whole chain on image/mask raster folders: Create patch footprints → Compute composition clusters → Compute DINOv2 uniqueness (optional) → Combine sampler weights, and writes the weighted patch layer, the training CSV and the report. Each step is also an algorithm of its own, with all its options; this one uses their defaults apart from the parameters below.

&lt;b&gt;Image / mask folder and pattern&lt;/b&gt;: the rasters; an image pairs with the mask of the same name (apart from words like _mask).
&lt;b&gt;Patch size, stride&lt;/b&gt;: windows in pixels (stride 0 = patch size).
&lt;b&gt;Windows at the raster edge&lt;/b&gt;: drop the windows that do not fit, or shift a last one inward so every pixel is covered, as in Create patch footprints.
&lt;b&gt;Nodata class&lt;/b&gt;: mask value without a label; a value the masks do not hold (e.g. -1) makes every value a class (when 0 is background).
&lt;b&gt;Number of clusters, exclusions, maximum nodata ratio&lt;/b&gt; (advanced): as in Compute composition clusters; turn off the border-nodata exclusion when the nodata class marks unlabelled pixels inside the tiles (not only at the scene edges).
&lt;b&gt;Compute uniqueness&lt;/b&gt;: DINOv2 uniqueness is computed only when this is on AND the sampling method reads it (the rank methods, multiplicative, uniqueness_only); class_balanced and composition_only need no DINOv2, so the chain skips it and says so in the log. Off with a rank method is an error: pick composition_only or class_balanced.
&lt;b&gt;DINOv2 model, bands, embedding cache, kNN backend&lt;/b&gt;: as in Compute DINOv2 uniqueness (bands: the three image bands fed to the model as red, green, blue, e.g. 4,3,2 for Sentinel-2).
&lt;b&gt;Sampling method&lt;/b&gt; (default class_balanced, the one that lifts a 1-2 % class well): as in Combine sampler weights.
&lt;b&gt;Dask scheduler&lt;/b&gt; (advanced): where the mask statistics and the DINOv2 embeddings run, as in Compute composition clusters and Compute DINOv2 uniqueness (empty = this process, local:N = N worker processes on this machine, or a scheduler address such as tcp://host:8786).</source>
        <translation>Executa toda a cadeia sobre pastas de rasters de imagem/máscara: Criar contornos dos patches → Calcular clusters de composição → Calcular singularidade DINOv2 (opcional) → Combinar pesos do amostrador, e grava a camada de patches com pesos, o CSV de treinamento e o relatório. Cada etapa também é um algoritmo próprio, com todas as suas opções; este usa os valores padrão delas, exceto pelos parâmetros abaixo.

&lt;b&gt;Pasta e padrão de imagens / máscaras&lt;/b&gt;: os rasters; uma imagem forma par com a máscara de mesmo nome (exceto por palavras como _mask).
&lt;b&gt;Tamanho do patch, passo&lt;/b&gt;: janelas em pixels (passo 0 = tamanho do patch).
&lt;b&gt;Janelas na borda do raster&lt;/b&gt;: descarta as janelas que não cabem, ou desloca uma última janela para dentro para que todo pixel seja coberto, como em Criar contornos dos patches.
&lt;b&gt;Classe sem dados&lt;/b&gt;: valor da máscara sem rótulo; um valor que as máscaras não contêm (p. ex. -1) torna todo valor uma classe (quando 0 é fundo).
&lt;b&gt;Número de clusters, exclusões, proporção máxima de pixels sem dados&lt;/b&gt; (avançado): como em Calcular clusters de composição; desative a exclusão de sem dados na borda quando a classe sem dados marca pixels sem rótulo dentro dos tiles (não só nas bordas da cena).
&lt;b&gt;Calcular singularidade&lt;/b&gt;: a singularidade DINOv2 só é calculada quando esta opção está ativa E o método de amostragem a usa (os métodos por posto, multiplicative, uniqueness_only); class_balanced e composition_only não precisam do DINOv2, então a cadeia pula esta etapa e avisa no log. Desativada com um método por posto é um erro: escolha composition_only ou class_balanced.
&lt;b&gt;Modelo DINOv2, bandas, cache de embeddings, backend kNN&lt;/b&gt;: como em Calcular singularidade DINOv2 (bandas: as três bandas da imagem passadas ao modelo como vermelho, verde, azul, p. ex. 4,3,2 para o Sentinel-2).
&lt;b&gt;Método de amostragem&lt;/b&gt; (padrão class_balanced, o que favorece bem uma classe de 1-2 %): como em Combinar pesos do amostrador.
&lt;b&gt;Escalonador Dask&lt;/b&gt; (avançado): onde rodam as estatísticas das máscaras e os embeddings DINOv2, como em Calcular clusters de composição e Calcular singularidade DINOv2 (vazio = este processo, local:N = N processos de trabalho nesta máquina, ou o endereço de um escalonador, como tcp://host:8786).</translation>
    </message>
</context>
<context>
    <name>BuildFromConfig</name>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="38" />
        <source>Build balanced dataset from config</source>
        <translation>Configuração YAML → conjunto de dados balanceado</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="64" />
        <source>balanced_dataset config (YAML)</source>
        <translation>Configuração balanced_dataset (YAML)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="64" />
        <source>YAML files (*.yaml *.yml)</source>
        <translation>Arquivos YAML (*.yaml *.yml)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="66" />
        <source>Sampler weights</source>
        <translation>Pesos do amostrador</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="69" />
        <source>Training CSV</source>
        <translation>CSV de treinamento</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="70" />
        <source>GeoJSON</source>
        <translation>GeoJSON</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="71" />
        <source>Sampling method applied</source>
        <translation>Método de amostragem aplicado</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="72" />
        <source>Effective sample size</source>
        <translation>Tamanho efetivo da amostra</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="110" />
        <source>Training CSV: {}</source>
        <translation>CSV de treinamento: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="112" />
        <source>GeoJSON: {}</source>
        <translation>GeoJSON: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="73" />
        <source>Coreset CSV (coreset: block)</source>
        <translation>CSV do coreset (bloco coreset:)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="116" />
        <source>Coreset CSV ({}, {} of {} patches): {}</source>
        <translation>CSV do coreset ({}, {} de {} patches): {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/build_from_config.py" line="41" />
        <source>Runs a pytorch-smt-tools balanced_dataset YAML config end to end, as `pytorch-smt-tools build-balanced-dataset config.yaml` does, in either of the tool's forms: the documentation's (database keys under input, mode embeddings) or the code's (backend: postgres with a postgres section, mode both or embeddings_only, exclude_mask_border_nodata…). Patches come from input.patch_records (a list or a CSV), input.image_dir + mask_dir (folders cut into patch_size windows), or a PostgreSQL tile table; then composition clusters (clustering, exclusion), DINOv2 uniqueness when the mode computes it (or, with fetch_embeddings, from the tile table's embedding column), the config's sampling_method (rank_max when it names none, as in the tool; the log says so; also target_shares, repeat_factor, rare_class_sampling, sqrt_inverse_freq) with the plugin's own weights: section (target_shares, min_ess, lift_class, max_weight, …) and boost, and it writes output.csv_path (the trainer's columns and the tool's diagnostics) and, when set, output.geojson_path in output.geojson_crs. mode masks_only with a method that needs uniqueness is an error that says how to fix it. Relative paths are read from the config's folder. An unknown key is an error that names it and lists the accepted ones. A coreset: block beside balanced_dataset: then selects the training subset from the CSV just written, as pytorch-smt-tools select-coreset does (its input_csv_path and parquet_path default to the run's CSV and embedding cache; see Select coreset from config).

&lt;b&gt;Config&lt;/b&gt;: the YAML file.
&lt;b&gt;Sampler weights&lt;/b&gt;: the patch layer with every computed field, to style and inspect in QGIS.</source>
        <translation>Executa de ponta a ponta uma configuração YAML balanced_dataset do pytorch-smt-tools, como faz `pytorch-smt-tools build-balanced-dataset config.yaml`, em qualquer das duas formas da ferramenta: a da documentação (chaves do banco de dados em input, mode embeddings) ou a do código (backend: postgres com uma seção postgres, mode both ou embeddings_only, exclude_mask_border_nodata…). Os patches vêm de input.patch_records (uma lista ou um CSV), de input.image_dir + mask_dir (pastas cortadas em janelas de patch_size) ou de uma tabela de tiles do PostgreSQL; depois vêm os clusters de composição (clustering, exclusion), a singularidade DINOv2 quando o modo a calcula (ou, com fetch_embeddings, a partir da coluna de embeddings da tabela de tiles), o sampling_method da configuração (rank_max quando ela não indica nenhum, como na ferramenta; o log avisa; também target_shares, repeat_factor, rare_class_sampling, sqrt_inverse_freq) com a seção weights: própria do plugin (target_shares, min_ess, lift_class, max_weight, …) e o boost, e grava output.csv_path (as colunas do treinador e os diagnósticos da ferramenta) e, quando definido, output.geojson_path em output.geojson_crs. mode masks_only com um método que precisa da singularidade é um erro que diz como corrigi-lo. Caminhos relativos são lidos a partir da pasta da configuração. Uma chave desconhecida é um erro que a nomeia e lista as aceitas. Um bloco coreset: ao lado de balanced_dataset: seleciona em seguida o subconjunto de treino a partir do CSV recém-gravado, como faz o select-coreset do pytorch-smt-tools (seus input_csv_path e parquet_path assumem por padrão o CSV e o cache de embeddings da execução; veja Configuração YAML → seleção de coreset).

&lt;b&gt;Configuração&lt;/b&gt;: o arquivo YAML.
&lt;b&gt;Pesos do amostrador&lt;/b&gt;: a camada de patches com todos os campos calculados, para estilizar e inspecionar no QGIS.</translation>
    </message>
</context>
<context>
    <name>CombineSamplerWeights</name>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="95" />
        <source>Combine sampler weights</source>
        <translation>Combinar pesos do amostrador</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="146" />
        <source>Patches with composition and/or uniqueness fields</source>
        <translation>Patches com campos de composição e/ou singularidade</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="148" />
        <source>Sampling method</source>
        <translation>Método de amostragem</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="149" />
        <source>Strength (power on rank weights)</source>
        <translation>Intensidade (expoente dos pesos por posto)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="152" />
        <source>Class balance α (class_balanced)</source>
        <translation>Balanceamento de classes α (class_balanced)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="155" />
        <source>Uniqueness mix (class_balanced, 0 = off)</source>
        <translation>Mistura de singularidade (class_balanced, 0 = desativado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="158" />
        <source>Rare-class boost multiplier (1 = off)</source>
        <translation>Multiplicador de reforço de classes raras (1 = desativado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="186" />
        <source>Weight floor (fraction of the largest weight)</source>
        <translation>Peso mínimo (fração do maior peso)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="189" />
        <source>Composition weight field</source>
        <translation>Campo de peso de composição</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="192" />
        <source>Uniqueness score field</source>
        <translation>Campo de pontuação de singularidade</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="195" />
        <source>Excluded flag field</source>
        <translation>Campo indicador de exclusão</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="198" />
        <source>CSV column name for image paths</source>
        <translation>Nome da coluna do CSV para os caminhos das imagens</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="200" />
        <source>CSV column name for mask paths</source>
        <translation>Nome da coluna do CSV para os caminhos das máscaras</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="207" />
        <source>Leave excluded patches out of the CSV</source>
        <translation>Deixar os patches excluídos fora do CSV</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="209" />
        <source>Write paths relative to the CSV's folder</source>
        <translation>Gravar caminhos relativos à pasta do CSV</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="212" />
        <source>Sampler weights</source>
        <translation>Pesos do amostrador</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="215" />
        <source>Training CSV</source>
        <translation>CSV de treinamento</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="215" />
        <source>CSV files (*.csv)</source>
        <translation>Arquivos CSV (*.csv)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="217" />
        <source>Report</source>
        <translation>Relatório</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="217" />
        <source>HTML files (*.html)</source>
        <translation>Arquivos HTML (*.html)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="219" />
        <source>Effective sample size</source>
        <translation>Tamanho efetivo da amostra</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="220" />
        <source>Included patches</source>
        <translation>Patches incluídos</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="221" />
        <source>Excluded patches</source>
        <translation>Patches excluídos</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="238" />
        <source>Rare classes must be class values separated by commas, e.g. 5,6; got '{}'.</source>
        <translation>As classes raras devem ser valores de classe separados por vírgula, por exemplo 5,6; recebido '{}'.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="275" />
        <source>the input layer</source>
        <translation>a camada de entrada</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="298" />
        <source>{}: {} included, {} excluded patches; effective sample size {:.0f} ({:.0%})</source>
        <translation>{}: {} patches incluídos, {} excluídos; tamanho efetivo da amostra {:.0f} ({:.0%})</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="326" />
        <source>Training CSV: {}</source>
        <translation>CSV de treinamento: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="328" />
        <source>Report: {}</source>
        <translation>Relatório: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="98" />
        <source>Turns the composition and uniqueness signals into one sampler_weight per patch, for PyTorch's WeightedRandomSampler, and writes it onto the layer (all input fields kept), into a training CSV and into an HTML report that shows, per class, the pixel share of one epoch under uniform sampling and under every method side by side.

&lt;b&gt;Sampling method&lt;/b&gt; (default &lt;i&gt;class_balanced&lt;/i&gt;): &lt;i&gt;rank_max&lt;/i&gt; = max(rank of composition weight, rank of uniqueness), the pytorch-smt-tools default; &lt;i&gt;rank_multiply&lt;/i&gt; = their product; &lt;i&gt;rank_add&lt;/i&gt; = their mean; &lt;i&gt;multiplicative&lt;/i&gt; = raw composition weight × raw uniqueness; &lt;i&gt;composition_only&lt;/i&gt;; &lt;i&gt;uniqueness_only&lt;/i&gt;; &lt;i&gt;class_balanced&lt;/i&gt; = Σ over classes of (patch share / mean share)^α, optionally mixed with the uniqueness rank (α 0.5 is pytorch-smt-tools' sqrt_inverse_freq); &lt;i&gt;target_shares&lt;/i&gt; = the weights with the largest effective sample size (ESS) that reach the class shares you ask for; &lt;i&gt;repeat_factor&lt;/i&gt; = LVIS / detectron2 repeat factors, max over a patch's classes of max(1, √(t / f_c)), f_c = fraction of patches containing class c; &lt;i&gt;rare_class_sampling&lt;/i&gt; = DAFormer: a class drawn with softmax((1 − f_c) / T) of its pixel frequency, then a patch containing it. Ranks are percentile ranks over the included patches, ties averaged, so a patch is drawn at most about 2× as often as under uniform sampling (rank_max: 1.5×): too weak for a class of 1–2% of the pixels. class_balanced lifts rare classes much more, which is why it is the default here; the report shows every method against the limit of what any weighting can reach on your data.
&lt;b&gt;Target shares&lt;/b&gt; (target_shares): class:share pairs, e.g. 6:0.08 or 6:8%, 4:0.1, as shares of the valid pixels drawn per epoch; classes not named are free. Empty: as balanced as the data allows (the largest smallest-class share) at an ESS of at least &lt;b&gt;Minimum ESS&lt;/b&gt; (fraction of the included patches), or, with &lt;b&gt;Class to lift&lt;/b&gt;, that class as high as the minimum ESS allows. A target no weighting reaches is replaced by the nearest reachable shares, and the log says so. &lt;b&gt;Largest weight&lt;/b&gt;: optional cap, in multiples of the mean weight.
&lt;b&gt;Pixels that make a patch contain a class&lt;/b&gt; (repeat_factor, rare_class_sampling): empty = DAFormer's 3000 px per 512 × 512 px, scaled by patch area. &lt;b&gt;Repeat-factor threshold t&lt;/b&gt;: empty = the median f_c (detectron2 uses 0.001 with LVIS's 1203 classes). &lt;b&gt;Temperature T&lt;/b&gt;: DAFormer's 0.01.
&lt;b&gt;Strength&lt;/b&gt;: power applied to rank weights (higher = stronger preference).
&lt;b&gt;Class balance α&lt;/b&gt;: 0.5 = square-root inverse frequency, 1 = inverse frequency.
&lt;b&gt;Uniqueness mix&lt;/b&gt;: for class_balanced, share of the weight taken from the uniqueness rank (0 = off).
&lt;b&gt;Rare-class boost&lt;/b&gt;: multiplier (1 = off) applied as 1 + (multiplier − 1) × the patch's share of rare classes; &lt;b&gt;Rare classes&lt;/b&gt;: comma-separated class values, empty = classes below the mean class frequency.
&lt;b&gt;Weight floor&lt;/b&gt;: every included patch weighs at least this fraction of the largest weight (target_shares: of the mean weight).
Excluded patches (field excluded) get weight 0 and stay in the outputs. Weights are scaled to mean 1 over included patches.
&lt;b&gt;Training CSV&lt;/b&gt;: columns image, mask, row_off, col_off, patch_size, sampler_weight (names of the path columns configurable) plus diagnostics; optionally without excluded rows and with paths relative to the CSV's folder.
&lt;b&gt;Report&lt;/b&gt;: HTML file with the weight histogram, per-class shares, the method comparison, the most over-sampled patches and the exclusions.</source>
        <translation>Converte os sinais de composição e de singularidade em um único sampler_weight por patch, para o WeightedRandomSampler do PyTorch, e o grava na camada (mantendo todos os campos de entrada), em um CSV de treinamento e em um relatório HTML que mostra, por classe, a proporção de pixels de uma época sob amostragem uniforme e sob cada método, lado a lado.

&lt;b&gt;Método de amostragem&lt;/b&gt; (padrão &lt;i&gt;class_balanced&lt;/i&gt;): &lt;i&gt;rank_max&lt;/i&gt; = máx(posto do peso de composição, posto da singularidade), o padrão do pytorch-smt-tools; &lt;i&gt;rank_multiply&lt;/i&gt; = o produto deles; &lt;i&gt;rank_add&lt;/i&gt; = a média deles; &lt;i&gt;multiplicative&lt;/i&gt; = peso de composição bruto × singularidade bruta; &lt;i&gt;composition_only&lt;/i&gt;; &lt;i&gt;uniqueness_only&lt;/i&gt;; &lt;i&gt;class_balanced&lt;/i&gt; = Σ sobre as classes de (proporção no patch / proporção média)^α, opcionalmente combinado com o posto de singularidade (α 0,5 é o sqrt_inverse_freq do pytorch-smt-tools); &lt;i&gt;target_shares&lt;/i&gt; = os pesos com o maior tamanho efetivo da amostra (ESS) que alcançam as proporções de classe que você pedir; &lt;i&gt;repeat_factor&lt;/i&gt; = fatores de repetição do LVIS / detectron2, o máximo, entre as classes do patch, de max(1, √(t / f_c)), sendo f_c a fração de patches que contêm a classe c; &lt;i&gt;rare_class_sampling&lt;/i&gt; = DAFormer: uma classe é sorteada com softmax((1 − f_c) / T) de sua frequência de pixels e, depois, um patch que a contém. Os postos são postos percentis sobre os patches incluídos, com empates pela média, de modo que um patch é sorteado no máximo cerca de 2× mais vezes do que sob amostragem uniforme (rank_max: 1,5×): fraco demais para uma classe com 1–2% dos pixels. class_balanced favorece muito mais as classes raras, e por isso é o padrão aqui; o relatório compara cada método com o limite do que qualquer ponderação pode alcançar nos seus dados.
&lt;b&gt;Proporções-alvo&lt;/b&gt; (target_shares): pares classe:proporção, por exemplo 6:0.08 ou 6:8%, 4:0.1, como proporções dos pixels válidos sorteados por época; as classes não indicadas ficam livres. Vazio: o mais balanceado que os dados permitem (a maior proporção da menor classe) com um ESS de pelo menos o &lt;b&gt;ESS mínimo&lt;/b&gt; (fração dos patches incluídos) ou, com &lt;b&gt;Classe a elevar&lt;/b&gt;, essa classe tão alta quanto o ESS mínimo permite. Um alvo que nenhuma ponderação alcança é substituído pelas proporções alcançáveis mais próximas, e o log avisa. &lt;b&gt;Peso máximo&lt;/b&gt;: teto opcional, em múltiplos do peso médio.
&lt;b&gt;Pixels para que um patch contenha uma classe&lt;/b&gt; (repeat_factor, rare_class_sampling): vazio = os 3000 px por 512 × 512 px do DAFormer, ajustados pela área do patch. &lt;b&gt;Limiar t do fator de repetição&lt;/b&gt;: vazio = a mediana de f_c (o detectron2 usa 0,001 com as 1203 classes do LVIS). &lt;b&gt;Temperatura T&lt;/b&gt;: 0,01, como no DAFormer.
&lt;b&gt;Intensidade&lt;/b&gt;: expoente aplicado aos pesos por posto (maior = preferência mais forte).
&lt;b&gt;Balanceamento de classes α&lt;/b&gt;: 0,5 = inverso da raiz quadrada da frequência, 1 = inverso da frequência.
&lt;b&gt;Mistura de singularidade&lt;/b&gt;: para class_balanced, fração do peso tomada do posto de singularidade (0 = desativado).
&lt;b&gt;Reforço de classes raras&lt;/b&gt;: multiplicador (1 = desativado) aplicado como 1 + (multiplicador − 1) × a proporção de classes raras no patch; &lt;b&gt;Classes raras&lt;/b&gt;: valores de classe separados por vírgula, vazio = classes abaixo da frequência média das classes.
&lt;b&gt;Peso mínimo&lt;/b&gt;: todo patch incluído pesa pelo menos esta fração do maior peso (target_shares: do peso médio).
Os patches excluídos (campo excluded=true) recebem peso 0 e permanecem nas saídas. Os pesos são escalonados para média 1 sobre os patches incluídos.
&lt;b&gt;CSV de treinamento&lt;/b&gt;: colunas image, mask, row_off, col_off, patch_size, sampler_weight (nomes das colunas de caminho configuráveis) mais diagnósticos; opcionalmente sem as linhas excluídas e com caminhos relativos à pasta do CSV.
&lt;b&gt;Relatório&lt;/b&gt;: arquivo HTML com o histograma dos pesos, as proporções por classe, a comparação dos métodos, os patches mais sobreamostrados e as exclusões.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="164" />
        <source>Target shares (e.g. 6:8%, 4:0.1)</source>
        <translation>Proporções-alvo (por exemplo 6:8%, 4:0.1)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="167" />
        <source>Minimum ESS (fraction of the patches)</source>
        <translation>ESS mínimo (fração dos patches)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="170" />
        <source>Class to lift</source>
        <translation>Classe a elevar</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="173" />
        <source>Largest weight (× the mean)</source>
        <translation>Peso máximo (× a média)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="177" />
        <source>Pixels that make a patch contain a class</source>
        <translation>Pixels para que um patch contenha uma classe</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="180" />
        <source>Repeat-factor threshold t</source>
        <translation>Limiar t do fator de repetição</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="183" />
        <source>Rare-class sampling temperature T</source>
        <translation>Temperatura T da amostragem de classes raras</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/combine_sampler_weights.py" line="161" />
        <source>Rare classes (e.g. 5,6; empty = automatic)</source>
        <translation>Classes raras (por exemplo 5,6; vazio = automático)</translation>
    </message>
</context>
<context>
    <name>ComputeCompositionClusters</name>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="51" />
        <source>Compute composition clusters</source>
        <translation>Calcular clusters de composição</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="91" />
        <source>Patch footprints</source>
        <translation>Contornos dos patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="93" />
        <source>Nodata class</source>
        <translation>Classe sem dados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="95" />
        <source>Number of clusters</source>
        <translation>Número de clusters</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="97" />
        <source>k min (elbow)</source>
        <translation>k mín. (cotovelo)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="99" />
        <source>k max (elbow)</source>
        <translation>k máx. (cotovelo)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="101" />
        <source>k (fixed)</source>
        <translation>k (fixo)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="103" />
        <source>Random state</source>
        <translation>Estado aleatório</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="105" />
        <source>Exclude patches with nodata on the mask border</source>
        <translation>Excluir patches com pixels sem dados na borda da máscara</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="107" />
        <source>Exclude patches with black image borders</source>
        <translation>Excluir patches com bordas pretas na imagem</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="110" />
        <source>Black tolerance (pixel value)</source>
        <translation>Tolerância de preto (valor do pixel)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="113" />
        <source>Maximum nodata ratio</source>
        <translation>Proporção máxima de pixels sem dados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="119" />
        <source>CLR epsilon</source>
        <translation>Épsilon do CLR</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="122" />
        <source>Parallel readers (0 = automatic)</source>
        <translation>Leitores paralelos (0 = automático)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="135" />
        <source>Composition clusters</source>
        <translation>Clusters de composição</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="165" />
        <source>k min ({}) is larger than k max ({}).</source>
        <translation>k mín. ({}) é maior que k máx. ({}).</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="205" />
        <source>the input layer</source>
        <translation>a camada de entrada</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="130" />
        <source>Use class proportions already on the layer (no mask reads)</source>
        <translation>Usar as proporções de classes já presentes na camada (sem ler máscaras)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="194" />
        <source>Class proportions taken from the layer fields {}; no mask is read.</source>
        <translation>Proporções de classes obtidas dos campos da camada {}; nenhuma máscara é lida.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="116" />
        <source>Minimum class entropy (nats, 0 = off)</source>
        <translation>Entropia mínima de classes (nats, 0 = desativado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="54" />
        <source>Reads the mask window of every patch, computes its class proportions (nodata excluded), groups patches of similar composition with KMeans on the centered log-ratio (CLR) of the proportions, and gives each patch the composition weight 1 / size of its cluster: patches of rare compositions weigh more.

Writes all input fields plus: one proportion field per class (cls_1, cls_2, …), class_entropy (Shannon entropy of the proportions, nats), nodata_ratio, border_nodata, black_border, excluded, exclusion_reason, freq_cluster_id, freq_cluster_size and freq_cluster_weight. Excluded patches keep their row with cluster id -1 and weight 0, and do not shape the clusters.

&lt;b&gt;Patch footprints&lt;/b&gt;: a layer from Create patch footprints (or any layer with the image/mask path and window fields; pick them under Advanced).
&lt;b&gt;Nodata class&lt;/b&gt;: mask value that means no label (default 0); a value the masks do not hold (e.g. -1) makes every value a class, for masks whose 0 is background.
&lt;b&gt;Number of clusters&lt;/b&gt;: &lt;i&gt;elbow&lt;/i&gt; tries k from k min to k max and picks the elbow of the normalised inertia curve; &lt;i&gt;fixed&lt;/i&gt; uses k.
&lt;b&gt;Random state&lt;/b&gt;: seed of KMeans, for repeatable clusters.
&lt;b&gt;Exclude patches with nodata on the mask border&lt;/b&gt;: any border pixel of the mask window equal to the nodata class.
&lt;b&gt;Exclude patches with black image borders&lt;/b&gt;: any border pixel of the image window at or below the black tolerance in all bands, or holding no value (the image's nodata value, mask or alpha, NaN).
&lt;b&gt;Maximum nodata ratio&lt;/b&gt;: exclude patches with a larger share of nodata pixels (1 = off).
&lt;b&gt;Minimum class entropy&lt;/b&gt;: exclude patches whose class entropy (nats) is below it, e.g. 0.1 drops patches of nearly a single class (0 = off); their exclusion_reason is has_low_entropy.
&lt;b&gt;CLR epsilon&lt;/b&gt;: replaces zero proportions before the log.
&lt;b&gt;Parallel readers&lt;/b&gt;: threads reading mask windows (0 = automatic).
&lt;b&gt;Dask scheduler&lt;/b&gt;: empty reads the masks in this process; local:N starts a Dask cluster of N worker processes on this machine for the run; an address such as tcp://host:8786 sends the reads to that cluster's workers, which must reach the rasters by the same paths. Same results either way; needs the dask and distributed packages.
&lt;b&gt;Use class proportions already on the layer&lt;/b&gt;: when the layer carries cls_&amp;lt;c&amp;gt; fields (e.g. loaded from a PostgreSQL tile table's class_dist), cluster them without reading any mask; the border and black-border exclusions need pixels: the flags an earlier run found (border_nodata, black_border fields) are kept, otherwise those exclusions are skipped.</source>
        <translation>Lê a janela da máscara de cada patch, calcula suas proporções de classes (excluindo os pixels sem dados), agrupa patches de composição semelhante com KMeans sobre a razão log-centrada (CLR) das proporções e atribui a cada patch o peso de composição 1 / tamanho do seu cluster: patches de composições raras pesam mais.

Grava todos os campos de entrada mais: um campo de proporção por classe (cls_1, cls_2, …), class_entropy (entropia de Shannon das proporções, em nats), nodata_ratio, border_nodata, black_border, excluded, exclusion_reason, freq_cluster_id, freq_cluster_size e freq_cluster_weight. Os patches excluídos mantêm sua linha com id de cluster -1 e peso 0, e não influenciam a formação dos clusters.

&lt;b&gt;Contornos dos patches&lt;/b&gt;: uma camada gerada por Criar contornos dos patches (ou qualquer camada com os campos de caminho da imagem/máscara e da janela; selecione-os em Avançado).
&lt;b&gt;Classe sem dados&lt;/b&gt;: valor da máscara que significa ausência de rótulo (padrão 0); um valor que as máscaras não contêm (p. ex. -1) torna todo valor uma classe, para máscaras em que 0 é fundo.
&lt;b&gt;Número de clusters&lt;/b&gt;: &lt;i&gt;cotovelo&lt;/i&gt; testa k de k mín. a k máx. e escolhe o cotovelo da curva de inércia normalizada; &lt;i&gt;fixo&lt;/i&gt; usa k.
&lt;b&gt;Estado aleatório&lt;/b&gt;: semente do KMeans, para clusters reproduzíveis.
&lt;b&gt;Excluir patches com pixels sem dados na borda da máscara&lt;/b&gt;: qualquer pixel de borda da janela da máscara igual à classe sem dados.
&lt;b&gt;Excluir patches com bordas pretas na imagem&lt;/b&gt;: qualquer pixel de borda da janela da imagem igual ou abaixo da tolerância de preto em todas as bandas, ou sem valor (o valor sem dados da imagem, sua máscara ou banda alfa, NaN).
&lt;b&gt;Proporção máxima de pixels sem dados&lt;/b&gt;: exclui patches com uma fração maior de pixels sem dados (1 = desativado).
&lt;b&gt;Entropia mínima de classes&lt;/b&gt;: exclui patches cuja entropia de classes (em nats) fica abaixo deste valor; por exemplo, 0,1 descarta patches com praticamente uma única classe (0 = desativado). O exclusion_reason deles é has_low_entropy.
&lt;b&gt;Épsilon do CLR&lt;/b&gt;: substitui proporções nulas antes do logaritmo.
&lt;b&gt;Leitores paralelos&lt;/b&gt;: threads que leem as janelas das máscaras (0 = automático).
&lt;b&gt;Escalonador Dask&lt;/b&gt;: vazio lê as máscaras neste processo; local:N inicia, durante a execução, um cluster Dask de N processos de trabalho nesta máquina; um endereço como tcp://host:8786 envia as leituras aos processos de trabalho (workers) desse cluster, que precisam acessar os rasters pelos mesmos caminhos. O resultado é o mesmo em qualquer caso; requer os pacotes dask e distributed.
&lt;b&gt;Usar as proporções de classes já presentes na camada&lt;/b&gt;: quando a camada contém campos cls_&amp;lt;c&amp;gt; (por exemplo, carregados do class_dist de uma tabela de tiles do PostgreSQL), agrupa-os sem ler nenhuma máscara; as exclusões por pixels sem dados na borda e por bordas pretas precisam dos pixels: as marcas que uma execução anterior encontrou (campos border_nodata, black_border) são mantidas; caso contrário, essas exclusões são ignoradas.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="173" />
        <source>The layer has a field {} although Nodata class is {}: class proportions of a run with another nodata class, which an update in place cannot remove. Write a new layer (Output) instead.</source>
        <translation>A camada tem um campo {} embora a classe sem dados seja {}: proporções de classes de uma execução com outra classe sem dados, que uma atualização no local não consegue remover. Grave uma nova camada (Saída) em vez disso.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="184" />
        <source>The layer's proportions have a field {} although Nodata class is {}: they were computed with another nodata class, and the layer has no mask paths to compute them again. Set the nodata class they were computed with.</source>
        <translation>As proporções da camada têm um campo {} embora a classe sem dados seja {}: foram calculadas com outra classe sem dados, e a camada não tem caminhos de máscara para recalculá-las. Defina a classe sem dados com que foram calculadas.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="188" />
        <source>The layer's proportions have a field {} although Nodata class is {}: they were computed with another nodata class, so the masks are read again with this one.</source>
        <translation>As proporções da camada têm um campo {} embora a classe sem dados seja {}: foram calculadas com outra classe sem dados, então as máscaras são lidas de novo com esta.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="198" />
        <source>Border exclusions kept from the layer fields {} (found from the pixels by an earlier run; turn off 'Use class proportions already on the layer' to find them again, e.g. with another black tolerance).</source>
        <translation>Exclusões de borda mantidas dos campos da camada {} (encontradas nos pixels por uma execução anterior; desative 'Usar as proporções de classes já presentes na camada' para encontrá-las de novo, p. ex. com outra tolerância de preto).</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_composition_clusters.py" line="212" />
        <source>Fields {} of an earlier run are left out: no class of this run.</source>
        <translation>Os campos {} de uma execução anterior foram deixados de fora: não são classes desta execução.</translation>
    </message>
</context>
<context>
    <name>ComputeDinov2Uniqueness</name>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="64" />
        <source>Compute DINOv2 uniqueness</source>
        <translation>Calcular singularidade DINOv2</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="108" />
        <source>Patch footprints</source>
        <translation>Contornos dos patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="110" />
        <source>DINOv2 model (short name, hub id or local folder)</source>
        <translation>Modelo DINOv2 (nome curto, id no hub ou pasta local)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="113" />
        <source>Batch size</source>
        <translation>Tamanho do lote</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="115" />
        <source>Parallel readers</source>
        <translation>Leitores paralelos</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="118" />
        <source>Use GPU</source>
        <translation>Usar GPU</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="119" />
        <source>Embedding cache (Parquet)</source>
        <translation>Cache de embeddings (Parquet)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="119" />
        <source>Parquet files (*.parquet)</source>
        <translation>Arquivos Parquet (*.parquet)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="123" />
        <source>Neighbours (k)</source>
        <translation>Vizinhos (k)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="126" />
        <source>kNN backend</source>
        <translation>Backend kNN</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="128" />
        <source>Bands (comma-separated)</source>
        <translation>Bandas (separadas por vírgula)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="129" />
        <source>Stretch low percentile</source>
        <translation>Percentil inferior do realce</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="132" />
        <source>Stretch high percentile</source>
        <translation>Percentil superior do realce</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="148" />
        <source>Uniqueness</source>
        <translation>Singularidade</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="151" />
        <source>Patches embedded in this run</source>
        <translation>Patches com embedding gerado nesta execução</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="152" />
        <source>Patches taken from the cache</source>
        <translation>Patches obtidos do cache</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="176" />
        <source>The stretch low percentile must be below the high one.</source>
        <translation>O percentil inferior do realce deve ser menor que o superior.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="192" />
        <source>the input layer</source>
        <translation>a camada de entrada</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="210" />
        <source>{} patches embedded, {} taken from the cache; k = {}, backend {}</source>
        <translation>{} patches com embedding gerado, {} obtidos do cache; k = {}, backend {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="138" />
        <source>Precision</source>
        <translation>Precisão</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="135" />
        <source>Fixed stretch values (low,high or l1,l2,l3;h1,h2,h3; empty = percentiles)</source>
        <translation>Valores fixos de realce (mín,máx ou l1,l2,l3;h1,h2,h3; vazio = percentis)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="67" />
        <source>Embeds every image patch with a DINOv2 model (CLS token) and scores how visually unique it is: uniqueness_score is the mean cosine distance to its k nearest other patches (0 = a patch has exact look-alikes, higher = more unique). Writes all input fields plus uniqueness_score.

&lt;b&gt;DINOv2 model&lt;/b&gt;: dinov2-small, dinov2-base or dinov2-large (facebook/dinov2-*), any Hugging Face model id, or a local folder saved with save_pretrained. Without internet, download the model once on a connected machine (AutoModel/AutoImageProcessor .save_pretrained(folder)) and give the folder.
&lt;b&gt;Batch size&lt;/b&gt;: patches per forward pass. &lt;b&gt;Parallel readers&lt;/b&gt;: threads reading windows ahead of the model. &lt;b&gt;Use GPU&lt;/b&gt;: CUDA when available, else CPU (the log says which).
&lt;b&gt;Embedding cache&lt;/b&gt;: optional Parquet file, or a folder (an existing one, or a path typed with a trailing /) holding the cache as parts, one per save. A re-run reuses the embeddings of patches (image path + window) already cached for the same model and computes only the missing ones; a damaged cache is reported and rebuilt.
&lt;b&gt;Neighbours (k)&lt;/b&gt;: how many nearest patches are averaged (default 5).
&lt;b&gt;kNN backend&lt;/b&gt;: nndescent (default: NN-Descent neighbour graph re-scored exactly, the fastest for large datasets: ~13-18 s for 155 000 patches on 2 cores, recall@5 ≥ 0.99; the first run on a machine also compiles its kernels once, about a minute), hnsw (hnswlib, approximate, about 3x slower), faiss (exact inner product), sklearn (exact, brute force).
&lt;b&gt;Reproducible kNN&lt;/b&gt;: identical scores every run. From 50 000 patches nndescent's graph (pynndescent) is the same every run on a given number of threads and keeps its speed; below, faiss builds it and can pick a different neighbour for about 1% of patches from one run to the next (near-ties; scores agree at Spearman 0.99999), so it then runs on one thread, about 2x slower. The other backends are reproducible anyway.
&lt;b&gt;Bands&lt;/b&gt;: the three image bands fed to the model (1-band imagery is replicated). &lt;b&gt;Stretch percentiles&lt;/b&gt;: imagery that is not 8-bit is scaled with one dataset-wide percentile stretch, so patches stay comparable. It is estimated from the patches, so adding patches moves it a little and recomputes every cached embedding: &lt;b&gt;Fixed stretch values&lt;/b&gt; (e.g. 0,3000 for Sentinel-2 reflectance, or one low and high per band) keep it, and the cache, as the dataset grows.
&lt;b&gt;Precision&lt;/b&gt;: auto (the default) is bf16 where the CPU or GPU computes bfloat16 natively, else fp32 on the CPU and fp16 on a GPU; int8 quantises the model's linear layers (CPU only, the fastest there); fp32 is full precision. On the benchmark set bf16 and int8 kept the uniqueness ranking of fp32 at Spearman ≥ 0.998 and ran 1.5x and 1.9-2.5x faster (docs/benchmarks.md). Embeddings of each precision are cached apart.
&lt;b&gt;Dask scheduler&lt;/b&gt;: empty computes the embeddings in this process; local:N starts a Dask cluster of N worker processes on this machine; a scheduler address (tcp://host:8786) sends them to its workers, each loading the model once (on its GPU with Use GPU). Workers must see the images and a model folder at the same paths. An embedding cache given as a folder is written by the workers, one part per task, so a re-run after a failure computes only what is missing.</source>
        <translation>Gera o embedding de cada patch de imagem com um modelo DINOv2 (token CLS) e pontua o quanto ele é visualmente singular: uniqueness_score é a distância cosseno média até os seus k outros patches mais próximos (0 = o patch tem sósias exatos, maior = mais singular). Grava todos os campos de entrada mais uniqueness_score.

&lt;b&gt;Modelo DINOv2&lt;/b&gt;: dinov2-small, dinov2-base ou dinov2-large (facebook/dinov2-*), qualquer id de modelo do Hugging Face ou uma pasta local salva com save_pretrained. Sem internet, baixe o modelo uma vez em uma máquina conectada (AutoModel/AutoImageProcessor .save_pretrained(folder)) e informe a pasta.
&lt;b&gt;Tamanho do lote&lt;/b&gt;: patches por passagem direta (forward). &lt;b&gt;Leitores paralelos&lt;/b&gt;: threads que leem as janelas antes de chegarem ao modelo. &lt;b&gt;Usar GPU&lt;/b&gt;: CUDA quando disponível, caso contrário CPU (o log informa qual).
&lt;b&gt;Cache de embeddings&lt;/b&gt;: arquivo Parquet opcional, ou uma pasta (uma existente, ou um caminho digitado com / no final) que guarda o cache em partes, uma por gravação. Uma nova execução reaproveita os embeddings dos patches (caminho da imagem + janela) já armazenados em cache para o mesmo modelo e calcula apenas os que faltam; um cache danificado é relatado e reconstruído.
&lt;b&gt;Vizinhos (k)&lt;/b&gt;: quantos patches mais próximos entram na média (padrão 5).
&lt;b&gt;Backend kNN&lt;/b&gt;: nndescent (padrão: grafo de vizinhos NN-Descent repontuado de forma exata, o mais rápido para conjuntos de dados grandes: ~13-18 s para 155 000 patches em 2 núcleos, recall@5 ≥ 0,99; a primeira execução em uma máquina também compila seus kernels uma vez, cerca de um minuto), hnsw (hnswlib, aproximado, cerca de 3x mais lento), faiss (produto interno exato), sklearn (exato, força bruta).
&lt;b&gt;kNN reprodutível&lt;/b&gt;: pontuações idênticas em toda execução. A partir de 50 000 patches, o grafo do nndescent (pynndescent) é o mesmo em toda execução com um dado número de threads e mantém sua velocidade; abaixo disso, o faiss o constrói e pode escolher um vizinho diferente para cerca de 1% dos patches de uma execução para outra (quase empates; as pontuações concordam com Spearman 0,99999), então ele roda em uma única thread, cerca de 2x mais lento. Os outros backends já são reprodutíveis.
&lt;b&gt;Bandas&lt;/b&gt;: as três bandas da imagem fornecidas ao modelo (imagens de 1 banda são replicadas). &lt;b&gt;Percentis do realce&lt;/b&gt;: imagens que não são de 8 bits são escalonadas com um único realce por percentis calculado sobre todo o conjunto de dados, para que os patches permaneçam comparáveis. Ele é estimado a partir dos patches, então acrescentar patches o move um pouco e recalcula todo embedding em cache: &lt;b&gt;Valores fixos de realce&lt;/b&gt; (p. ex. 0,3000 para refletância do Sentinel-2, ou um mínimo e um máximo por banda) o mantêm, e o cache também, à medida que o conjunto de dados cresce.
&lt;b&gt;Precisão&lt;/b&gt;: auto (o padrão) é bf16 onde a CPU ou a GPU calcula bfloat16 nativamente; caso contrário, fp32 na CPU e fp16 na GPU; int8 quantiza as camadas lineares do modelo (só na CPU, onde é a mais rápida); fp32 é a precisão total. No conjunto de benchmark, bf16 e int8 mantiveram a ordenação de singularidade do fp32 com Spearman ≥ 0,998 e rodaram 1,5x e 1,9-2,5x mais rápido (docs/benchmarks.md). Os embeddings de cada precisão ficam em cache separadamente.
&lt;b&gt;Escalonador Dask&lt;/b&gt;: vazio calcula os embeddings neste processo; local:N inicia um cluster Dask de N processos de trabalho nesta máquina; o endereço de um escalonador (tcp://host:8786) os envia aos seus processos de trabalho, cada um carregando o modelo uma vez (na sua GPU com Usar GPU). Os processos de trabalho precisam ver as imagens e a pasta do modelo nos mesmos caminhos. Um cache de embeddings dado como pasta é escrito pelos processos de trabalho, uma parte por tarefa, de modo que uma nova execução após uma falha calcula só o que falta.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/compute_dinov2_uniqueness.py" line="139" />
        <source>Reproducible kNN (identical scores every run)</source>
        <translation>kNN reprodutível (pontuações idênticas em toda execução)</translation>
    </message>
</context>
<context>
    <name>CreatePatchFootprints</name>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="56" />
        <source>Create patch footprints</source>
        <translation>Criar contornos dos patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="79" />
        <source>Image rasters</source>
        <translation>Rasters de imagem</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="81" />
        <source>Mask rasters</source>
        <translation>Rasters de máscara</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="83" />
        <source>Image folder (instead of layers)</source>
        <translation>Pasta de imagens (em vez de camadas)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="86" />
        <source>Image file pattern</source>
        <translation>Padrão de arquivo das imagens</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="88" />
        <source>Mask folder (default: the image folder)</source>
        <translation>Pasta de máscaras (padrão: a pasta de imagens)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="91" />
        <source>Mask file pattern</source>
        <translation>Padrão de arquivo das máscaras</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="93" />
        <source>Patch size (pixels)</source>
        <translation>Tamanho do patch (pixels)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="96" />
        <source>Stride (pixels, 0 = patch size)</source>
        <translation>Passo (pixels, 0 = tamanho do patch)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="99" />
        <source>Windows at the raster edge</source>
        <translation>Janelas na borda do raster</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="100" />
        <source>Patch footprints</source>
        <translation>Contornos dos patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="111" />
        <source>Give either raster layers or a folder, not both.</source>
        <translation>Informe camadas raster ou uma pasta, não ambos.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="115" />
        <source>Give image and mask rasters, or an image folder.</source>
        <translation>Informe rasters de imagem e de máscara, ou uma pasta de imagens.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="133" />
        <source>{} image/mask pairs</source>
        <translation>{} pares de imagem/máscara</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="141" />
        <source>{} patch footprints written</source>
        <translation>{} contornos de patches gravados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/create_patch_footprints.py" line="59" />
        <source>Cuts image/mask raster pairs into square patch windows and writes one polygon per window, in the first raster's CRS, with the fields image_path, mask_path, row_off, col_off, patch_size and a stable patch_id. This layer is the input of every other Balanced Sampling algorithm.

&lt;b&gt;Image rasters / Mask rasters&lt;/b&gt;: the pairs, given as layers. An image pairs with the mask whose file name is the same apart from words like _mask or _label (tile_01.tif ↔ tile_01_mask.tif, or images/tile_01.tif ↔ masks/tile_01.tif).
&lt;b&gt;Image folder / pattern, Mask folder / pattern&lt;/b&gt;: instead of layers, every file in a folder that matches a pattern such as *.tif. The mask folder defaults to the image folder.
&lt;b&gt;Patch size&lt;/b&gt;: window side in pixels.
&lt;b&gt;Stride&lt;/b&gt;: step between windows in pixels; 0 means the patch size (no overlap).
&lt;b&gt;Windows at the raster edge&lt;/b&gt;: &lt;i&gt;Drop&lt;/i&gt; keeps only windows that fit inside the raster; &lt;i&gt;Shift inward&lt;/i&gt; adds a last window aligned to the right/bottom edge so every pixel is covered (it overlaps its neighbour). Windows never extend past the raster.

Image and mask of a pair must share one pixel grid. Rasters in another CRS than the first (e.g. Sentinel-2 tiles of two UTM zones) have their footprints reprojected to it, as the log says; their patches are still read on their own pixel grid.</source>
        <translation>Divide pares de rasters de imagem/máscara em janelas quadradas (patches) e grava um polígono por janela, no SRC do primeiro raster, com os campos image_path, mask_path, row_off, col_off, patch_size e um patch_id estável. Esta camada é a entrada de todos os demais algoritmos do Balanced Sampling.

&lt;b&gt;Rasters de imagem / Rasters de máscara&lt;/b&gt;: os pares, informados como camadas. Uma imagem forma par com a máscara cujo nome de arquivo é o mesmo, exceto por palavras como _mask ou _label (tile_01.tif ↔ tile_01_mask.tif, ou images/tile_01.tif ↔ masks/tile_01.tif).
&lt;b&gt;Pasta / padrão de imagens, Pasta / padrão de máscaras&lt;/b&gt;: em vez de camadas, todos os arquivos de uma pasta que correspondem a um padrão como *.tif. Por padrão, a pasta de máscaras é a pasta de imagens.
&lt;b&gt;Tamanho do patch&lt;/b&gt;: lado da janela em pixels.
&lt;b&gt;Passo&lt;/b&gt;: deslocamento entre janelas em pixels; 0 significa o tamanho do patch (sem sobreposição).
&lt;b&gt;Janelas na borda do raster&lt;/b&gt;: &lt;i&gt;Descartar&lt;/i&gt; mantém apenas as janelas que cabem dentro do raster; &lt;i&gt;Deslocar para dentro&lt;/i&gt; acrescenta uma última janela alinhada à borda direita/inferior, de modo que todos os pixels sejam cobertos (ela se sobrepõe à vizinha). As janelas nunca ultrapassam os limites do raster.

A imagem e a máscara de um par devem compartilhar a mesma grade de pixels. Rasters em outro SRC que o do primeiro (p. ex. tiles do Sentinel-2 de duas zonas UTM) têm seus contornos reprojetados para ele, como o log informa; seus patches continuam sendo lidos na sua própria grade de pixels.</translation>
    </message>
</context>
<context>
    <name>GraduatedStyle</name>
    <message>
        <location filename="../processing_provider/styles.py" line="180" />
        <source>cluster {}</source>
        <translation>cluster {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="181" />
        <source>clusters {}</source>
        <translation>clusters {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="212" />
        <source>excluded</source>
        <translation>excluídos</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="253" />
        <source>Classes of {}, excluded patches hatched</source>
        <translation>Classes de {}, patches excluídos hachurados</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="256" />
        <source>Style not saved into {}: {}</source>
        <translation>Estilo não gravado em {}: {}</translation>
    </message>
</context>
<context>
    <name>ImportPatchRecords</name>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="32" />
        <source>Import patch records</source>
        <translation>Importar registros de patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="49" />
        <source>Patch records (CSV or YAML config)</source>
        <translation>Registros de patches (CSV ou configuração YAML)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="49" />
        <source>Patch records (*.csv *.yaml *.yml)</source>
        <translation>Registros de patches (*.csv *.yaml *.yml)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="52" />
        <source>Records whose raster is missing</source>
        <translation>Registros cujo raster está ausente</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="52" />
        <source>Fail</source>
        <translation>Falhar</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="52" />
        <source>Skip and report</source>
        <translation>Ignorar e informar</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="55" />
        <source>Patch footprints</source>
        <translation>Contornos dos patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="57" />
        <source>Missing rasters</source>
        <translation>Rasters ausentes</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="74" />
        <source>Raster not found, its records were skipped: {}</source>
        <translation>Raster não encontrado, seus registros foram ignorados: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="79" />
        <source>{} patch records imported</source>
        <translation>{} registros de patches importados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/import_patch_records.py" line="35" />
        <source>Turns a list of patches into a patch footprint layer that the other Balanced Sampling algorithms accept. Each footprint polygon comes from its image raster's geotransform and CRS.

&lt;b&gt;Patch records&lt;/b&gt;: a CSV with the columns image_path, mask_path, row_off, col_off, patch_size (or image, mask, … as in a training CSV), or a pytorch-smt-tools balanced_dataset YAML config whose input.patch_records lists them. Relative paths are read from the file's folder. Extra columns (e.g. cls_1, uniqueness_score) are kept as fields; a training CSV's class_dist_json becomes the cls_&lt;class&gt; fields and its has_mask_border_nodata / has_image_black_border the border_nodata / black_border fields, so the weights and coreset algorithms read it back.
&lt;b&gt;Records whose raster is missing&lt;/b&gt;: &lt;i&gt;fail&lt;/i&gt; stops and lists the missing files; &lt;i&gt;skip&lt;/i&gt; leaves those records out and lists them in the log. Nothing is dropped silently.</source>
        <translation>Converte uma lista de patches em uma camada de contornos dos patches aceita pelos demais algoritmos do Balanced Sampling. Cada polígono de contorno é obtido da geotransformação e do SRC do seu raster de imagem.

&lt;b&gt;Registros de patches&lt;/b&gt;: um CSV com as colunas image_path, mask_path, row_off, col_off, patch_size (ou image, mask, … como em um CSV de treinamento), ou uma configuração YAML balanced_dataset do pytorch-smt-tools cujo input.patch_records os lista. Os caminhos relativos são interpretados em relação à pasta do arquivo. As colunas extras (por exemplo, cls_1, uniqueness_score) são mantidas como campos; o class_dist_json de um CSV de treinamento vira os campos cls_&lt;classe&gt; e seus has_mask_border_nodata / has_image_black_border os campos border_nodata / black_border, para que os algoritmos de pesos e de coreset o leiam de volta.
&lt;b&gt;Registros cujo raster está ausente&lt;/b&gt;: &lt;i&gt;falhar&lt;/i&gt; interrompe e lista os arquivos ausentes; &lt;i&gt;ignorar&lt;/i&gt; deixa esses registros de fora e os lista no log. Nada é descartado silenciosamente.</translation>
    </message>
</context>
<context>
    <name>LoadTilesFromPostgres</name>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="50" />
        <source>Load tiles from PostgreSQL</source>
        <translation>Carregar tiles do PostgreSQL</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="72" />
        <source>QGIS PostgreSQL connection</source>
        <translation>Conexão PostgreSQL do QGIS</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="74" />
        <source>Host</source>
        <translation>Host</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="76" />
        <source>Port</source>
        <translation>Porta</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="79" />
        <source>Database</source>
        <translation>Banco de dados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="81" />
        <source>User</source>
        <translation>Usuário</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="83" />
        <source>Password</source>
        <translation>Senha</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="84" />
        <source>Authentication configuration</source>
        <translation>Configuração de autenticação</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="86" />
        <source>Table</source>
        <translation>Tabela</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="87" />
        <source>Where clause</source>
        <translation>Cláusula WHERE</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="88" />
        <source>Nodata class</source>
        <translation>Classe sem dados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="90" />
        <source>Records whose raster is missing</source>
        <translation>Registros cujo raster está ausente</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="90" />
        <source>Fail</source>
        <translation>Falhar</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="90" />
        <source>Skip and report</source>
        <translation>Ignorar e informar</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="94" />
        <source>Column for {}</source>
        <translation>Coluna para {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="104" />
        <source>Patch footprints</source>
        <translation>Contornos dos patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="123" />
        <source>No PostgreSQL connection named '{}' in QGIS.</source>
        <translation>Não há nenhuma conexão PostgreSQL chamada '{}' no QGIS.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="138" />
        <source>Authentication configuration '{}' cannot be read.</source>
        <translation>Não é possível ler a configuração de autenticação '{}'.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="171" />
        <source>Raster not found, its tiles were skipped: {}</source>
        <translation>Raster não encontrado, seus tiles foram ignorados: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="172" />
        <source>{} tiles loaded</source>
        <translation>{} tiles carregados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="53" />
        <source>Reads the patch records of a dataset_explorer tile table and writes them as a patch footprint layer. Pre-computed class_dist (JSON: class value → share or pixel count) becomes cls_&amp;lt;c&amp;gt; proportion fields, used directly by Compute composition clusters (no mask is read); uniqueness_score, class_entropy and nodata_ratio become fields that Combine sampler weights uses.

&lt;b&gt;Connection&lt;/b&gt;: a PostgreSQL connection saved in QGIS (its authentication configuration is used), or host, port, database, user and password / authentication configuration. The session is read-only.
&lt;b&gt;Table&lt;/b&gt;: name or schema.name.
&lt;b&gt;Where clause&lt;/b&gt;: an SQL condition such as nodata_ratio &amp;lt; 0.05; it cannot write (read-only session, no statement separators).
&lt;b&gt;Column names&lt;/b&gt; (advanced): the table's columns for each role; the optional ones (class_dist, uniqueness_score, class_entropy, nodata_ratio, id) are skipped when the table lacks them, unless you changed their name.
&lt;b&gt;Statement timeout&lt;/b&gt; (advanced): seconds a query may run on the server before it is stopped (0 = no limit); cancelling also stops the running query.
&lt;b&gt;Nodata class&lt;/b&gt;: the class_dist entry that is nodata (left out of the proportions).
&lt;b&gt;Records whose raster is missing&lt;/b&gt;: fail, or skip and list them.</source>
        <translation>Lê os registros de patches de uma tabela de tiles do dataset_explorer e os grava como uma camada de contornos dos patches. O class_dist pré-calculado (JSON: valor da classe → proporção ou contagem de pixels) é convertido em campos de proporção cls_&amp;lt;c&amp;gt;, usados diretamente por Calcular clusters de composição (nenhuma máscara é lida); uniqueness_score, class_entropy e nodata_ratio se tornam campos usados por Combinar pesos do amostrador.

&lt;b&gt;Conexão&lt;/b&gt;: uma conexão PostgreSQL salva no QGIS (sua configuração de autenticação é usada), ou host, porta, banco de dados, usuário e senha / configuração de autenticação. A sessão é somente leitura.
&lt;b&gt;Tabela&lt;/b&gt;: nome ou schema.name.
&lt;b&gt;Cláusula WHERE&lt;/b&gt;: uma condição SQL como nodata_ratio &amp;lt; 0.05; ela não pode gravar (sessão somente leitura, sem separadores de comandos).
&lt;b&gt;Nomes das colunas&lt;/b&gt; (avançado): as colunas da tabela para cada papel; as opcionais (class_dist, uniqueness_score, class_entropy, nodata_ratio, id) são ignoradas quando a tabela não as tem, a menos que você tenha mudado o nome delas.
&lt;b&gt;Tempo limite de consulta&lt;/b&gt; (avançado): segundos que uma consulta pode rodar no servidor antes de ser interrompida (0 = sem limite); cancelar também interrompe a consulta em andamento.
&lt;b&gt;Classe sem dados&lt;/b&gt;: a entrada de class_dist que corresponde aos pixels sem dados (deixada fora das proporções).
&lt;b&gt;Registros cujo raster está ausente&lt;/b&gt;: falhar, ou ignorar e listá-los.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/load_tiles_from_postgres.py" line="99" />
        <source>Statement timeout (seconds, 0 = none)</source>
        <translation>Tempo limite de consulta (segundos, 0 = nenhum)</translation>
    </message>
</context>
<context>
    <name>PackageInstaller</name>
    <message>
        <location filename="../processing_provider/package_installer.py" line="218" />
        <source>Could not inspect the Python of this QGIS ({}):
{}</source>
        <translation>Não foi possível examinar o Python deste QGIS ({}):
{}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="648" />
        <source>Inspecting the Python of this QGIS: {}</source>
        <translation>Examinando o Python deste QGIS: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="656" />
        <source>Nothing to install: the Python of this QGIS already has {}.</source>
        <translation>Nada a instalar: o Python deste QGIS já tem {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="672" />
        <source>Nothing to install: every package is already there.</source>
        <translation>Nada a instalar: todos os pacotes já estão presentes.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="677" />
        <source>Done in {:.0f} s.</source>
        <translation>Concluído em {:.0f} s.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="684" />
        <source>The installation failed: {}</source>
        <translation>A instalação falhou: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="708" />
        <source>pip is not available to the Python of this QGIS ({}). Install it (on Debian or Ubuntu: sudo apt install python3-pip), then try again.</source>
        <translation>O pip não está disponível para o Python deste QGIS ({}). Instale-o (no Debian ou Ubuntu: sudo apt install python3-pip) e tente novamente.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="712" />
        <source>The pip of this QGIS's Python is too old ({}; the installer needs 22.2 or later). Update it with: {} -m pip install --user --upgrade pip</source>
        <translation>O pip do Python deste QGIS é antigo demais ({}; o instalador precisa da versão 22.2 ou posterior). Atualize-o com: {} -m pip install --user --upgrade pip</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="725" />
        <source>QGIS has numpy {}{}: it is kept and never installed into the plugin's folder.</source>
        <translation>O QGIS tem o numpy {}{}: ele é mantido e nunca é instalado na pasta do plugin.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="725" />
        <source>, which its GDAL bindings import</source>
        <translation>, que as bibliotecas Python do GDAL importam</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="729" />
        <source>QGIS's GDAL bindings were built for numpy {}: numpy is limited to {}.</source>
        <translation>As bibliotecas Python do GDAL do QGIS foram compiladas para o numpy {}: o numpy fica limitado a {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="731" />
        <source>Finding versions of {} that fit this QGIS…</source>
        <translation>Procurando versões de {} compatíveis com este QGIS…</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="745" />
        <source>pip found no versions of {} that fit this QGIS:
{}</source>
        <translation>O pip não encontrou versões de {} compatíveis com este QGIS:
{}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="751" />
        <source>pip chose a torch built for CUDA, which would add {} packages of NVIDIA libraries (several GB): {}. The plugin runs DINOv2 on the CPU; install the CPU build of torch (index {}) or leave torch out.</source>
        <translation>O pip escolheu um torch compilado para CUDA, o que acrescentaria {} pacotes de bibliotecas da NVIDIA (vários GB): {}. O plugin executa o DINOv2 na CPU; instale a versão de CPU do torch (índice {}) ou deixe o torch de fora.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="757" />
        <source>{0} {1} ({2} wanted)</source>
        <translation>{0} {1} ({2} necessário)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="759" />
        <source>{0} {1} would be needed, but QGIS ships {0} {2}, which Python finds first: it is not installed (the check after installing tells whether QGIS's copy works).</source>
        <translation>{0} {1} seria necessário, mas o QGIS traz {0} {2}, que o Python encontra primeiro: ele não é instalado (a verificação após a instalação diz se a cópia do QGIS funciona).</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="765" />
        <source>{} {} instead of the tested {}: the tested version does not fit this QGIS.</source>
        <translation>{} {} em vez da versão testada {}: a versão testada não é compatível com este QGIS.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="774" />
        <source>Installing {} packages: {}</source>
        <translation>Instalando {} pacotes: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="789" />
        <source>pip could not install {}:
{}</source>
        <translation>O pip não conseguiu instalar {}:
{}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="799" />
        <source>{} could not be built from source (no wheel for this Python and platform; building needs a C/C++ compiler); what needs it stays unavailable:
{}</source>
        <translation>Não foi possível compilar {} a partir do código-fonte (não há wheel para este Python e plataforma; a compilação exige um compilador C/C++); o que depende dele continua indisponível:
{}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="806" />
        <source>pip installed nothing.</source>
        <translation>O pip não instalou nada.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="812" />
        <source>Moving the packages into {}</source>
        <translation>Movendo os pacotes para {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="821" />
        <source>Checking that QGIS's GDAL and every package still work…</source>
        <translation>Verificando se o GDAL do QGIS e todos os pacotes continuam funcionando…</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="827" />
        <source>The installation was rolled back, the plugin's folder is as it was: after installing, {}</source>
        <translation>A instalação foi desfeita, a pasta do plugin está como antes: após a instalação, {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="828" />
        <source>{} failed: {}</source>
        <translation>{} falhou: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="832" />
        <source>Likely cause: the Python of this QGIS has older versions of packages they need, which Python finds before the plugin's folder and which the installer does not replace: {}.</source>
        <translation>Causa provável: o Python deste QGIS tem versões mais antigas de pacotes de que eles precisam, que o Python encontra antes da pasta do plugin e que o instalador não substitui: {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="841" />
        <source>Installed into {}: {}.</source>
        <translation>Instalado em {}: {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="844" />
        <source>Not installed (could not be built): {}.</source>
        <translation>Não instalado (não foi possível compilar): {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="858" />
        <source>the check did not finish within 10 minutes</source>
        <translation>a verificação não terminou em 10 minutos</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="862" />
        <source>the check crashed (exit code {}): {}</source>
        <translation>a verificação falhou de forma inesperada (código de saída {}): {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="874" />
        <source>Installation canceled; the plugin's folder is as it was.</source>
        <translation>Instalação cancelada; a pasta do plugin está como antes.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="694" />
        <source>Compiling the kNN graph kernels for this machine (once, about a minute)…</source>
        <translation>Compilando os kernels do grafo kNN para esta máquina (uma única vez, cerca de um minuto)…</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="699" />
        <source>The kNN graph kernels were not compiled now ({}); the packages are installed, and the first kNN run of 50 000 patches or more will compile them (about a minute, once).</source>
        <translation>Os kernels do grafo kNN não foram compilados agora ({}); os pacotes estão instalados, e a primeira execução kNN com 50 000 patches ou mais vai compilá-los (cerca de um minuto, uma única vez).</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="699" />
        <source>canceled</source>
        <translation>cancelado</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_installer.py" line="699" />
        <source>exit code {}</source>
        <translation>código de saída {}</translation>
    </message>
</context>
<context>
    <name>PackagesDialog</name>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="39" />
        <source>Arrays, for every algorithm (QGIS's own copy is always kept)</source>
        <translation>Arrays, para todos os algoritmos (a cópia do próprio QGIS é sempre mantida)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="40" />
        <source>The patch table every algorithm reads and writes</source>
        <translation>A tabela de patches que todos os algoritmos leem e escrevem</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="41" />
        <source>Ranks when combining sampler weights</source>
        <translation>Postos (ranks) ao combinar os pesos de amostragem</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="42" />
        <source>Composition clusters (KMeans), the sklearn kNN backend</source>
        <translation>Agrupamentos de composição (KMeans), o backend kNN sklearn</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="43" />
        <source>Thread limits while clustering</source>
        <translation>Limite de threads durante o agrupamento</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="44" />
        <source>Reading image and mask windows</source>
        <translation>Leitura de janelas de imagens e máscaras</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="45" />
        <source>pytorch-smt-tools YAML configs</source>
        <translation>Configurações YAML do pytorch-smt-tools</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="46" />
        <source>The GeoJSON output of Build from config</source>
        <translation>A saída GeoJSON de Construir a partir da configuração</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="47" />
        <source>The embedding cache (Parquet)</source>
        <translation>O cache de embeddings (Parquet)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="48" />
        <source>Loading tiles from PostgreSQL</source>
        <translation>Carregamento de tiles do PostgreSQL</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="49" />
        <source>The nndescent (default) and faiss kNN backends</source>
        <translation>Os backends kNN nndescent (padrão) e faiss</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="50" />
        <source>The hnsw kNN backend (may need a C++ compiler to build)</source>
        <translation>O backend kNN hnsw (pode exigir um compilador C++ para ser compilado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="54" />
        <source>DINOv2 uniqueness: runs the image model. Large: the CPU wheel is about 200 MB to download, about 750 MB installed</source>
        <translation>Unicidade DINOv2: executa o modelo de imagem. Grande: o wheel para CPU tem cerca de 200 MB para baixar e ocupa cerca de 750 MB instalado</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="56" />
        <source>DINOv2 uniqueness: loads the DINOv2 model (about 130 MB installed)</source>
        <translation>Unicidade DINOv2: carrega o modelo DINOv2 (cerca de 130 MB instalado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="58" />
        <source>DINOv2 uniqueness: reads the model weights</source>
        <translation>Unicidade DINOv2: lê os pesos do modelo</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="89" />
        <source>Installing Python packages for Balanced Sampling</source>
        <translation>Instalando pacotes Python para o Balanced Sampling</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="128" />
        <source>Balanced Sampling — Python packages</source>
        <translation>Balanced Sampling — pacotes Python</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="131" />
        <source>Balanced Sampling uses these Python packages. Missing ones are installed into the plugin's own folder, {}, which QGIS searches after its own packages: nothing QGIS ships (numpy, GDAL) is replaced. pip runs with the Python of this QGIS: {}</source>
        <translation>O Balanced Sampling usa estes pacotes Python. Os que faltam são instalados na pasta do próprio plugin, {}, que o QGIS consulta depois dos seus próprios pacotes: nada do que o QGIS traz (numpy, GDAL) é substituído. O pip é executado com o Python deste QGIS: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="140" />
        <source>Package</source>
        <translation>Pacote</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="140" />
        <source>Needed for</source>
        <translation>Necessário para</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="140" />
        <source>Status</source>
        <translation>Situação</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="148" />
        <source>Also install torch, transformers and safetensors, for DINOv2 uniqueness (large: about 200 MB to download, about 1 GB on disk)</source>
        <translation>Instalar também torch, transformers e safetensors, para a unicidade DINOv2 (grande: cerca de 200 MB para baixar, cerca de 1 GB em disco)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="168" />
        <source>Install</source>
        <translation>Instalar</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="170" />
        <source>Cancel installation</source>
        <translation>Cancelar instalação</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="187" />
        <source>Installed with QGIS ({})</source>
        <translation>Instalado com o QGIS ({})</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="189" />
        <source>Installed in the plugin's folder ({})</source>
        <translation>Instalado na pasta do plugin ({})</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="191" />
        <source>Optional, not installed</source>
        <translation>Opcional, não instalado</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="191" />
        <source>Missing</source>
        <translation>Ausente</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="215" />
        <source>Missing: {}.</source>
        <translation>Ausentes: {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="215" />
        <source>Every package the algorithms need is installed.</source>
        <translation>Todos os pacotes de que os algoritmos precisam estão instalados.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="236" />
        <source>Installing… pip's log is in the message log (View &gt; Panels &gt; Log Messages), tab Balanced Sampling.</source>
        <translation>Instalando… o log do pip está no registro de mensagens (Exibir &gt; Painéis &gt; Mensagens de Log), aba Balanced Sampling.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="250" />
        <source>The installation ended without a result.</source>
        <translation>A instalação terminou sem resultado.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="255" />
        <source>Restart QGIS to use the new versions of {}.</source>
        <translation>Reinicie o QGIS para usar as novas versões de {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="59" />
        <source>Dask scheduler: runs mask reads and DINOv2 embeddings as tasks on a cluster (about 1.5 MB to download)</source>
        <translation>Escalonador Dask: executa as leituras de máscaras e os embeddings DINOv2 como tarefas em um cluster (cerca de 1,5 MB para baixar)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="61" />
        <source>Dask scheduler: connects to a scheduler or starts local workers (about 1 MB to download)</source>
        <translation>Escalonador Dask: conecta-se a um escalonador ou inicia processos de trabalho locais (cerca de 1 MB para baixar)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="153" />
        <source>Also install Dask, to run on clusters (about 5 MB)</source>
        <translation>Instalar também o Dask, para clusters (cerca de 5 MB)</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="155" />
        <source>dask and distributed, needed only when the advanced parameter Dask scheduler is set. With their dependencies: about 5 MB to download, about 40 MB on disk.</source>
        <translation>dask e distributed, necessários apenas quando o parâmetro avançado Escalonador Dask está preenchido. Com suas dependências: cerca de 5 MB para baixar, cerca de 40 MB em disco.</translation>
    </message>
    <message>
        <location filename="../processing_provider/package_dialog.py" line="51" />
        <source>The nndescent kNN graph from 50 000 patches, about twice as fast as faiss's (with numba: about 45 MB installed; its kernels are compiled while installing, about a minute)</source>
        <translation>O grafo kNN do nndescent a partir de 50 000 patches, cerca de duas vezes mais rápido que o do faiss (com numba: cerca de 45 MB instalados; seus kernels são compilados durante a instalação, cerca de um minuto)</translation>
    </message>
</context>
<context>
    <name>SelectCoreset</name>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="94" />
        <source>Select coreset</source>
        <translation>Selecionar coreset</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="127" />
        <source>Patches with composition fields (and sampler weights)</source>
        <translation>Patches com campos de composição (e pesos do amostrador)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="130" />
        <source>Method</source>
        <translation>Método</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="133" />
        <source>Budget (a fraction ≤ 1, or a number of patches)</source>
        <translation>Orçamento (uma fração ≤ 1 ou um número de patches)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="136" />
        <source>Budget mode</source>
        <translation>Modo do orçamento</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="136" />
        <source>fraction — of the patches not excluded</source>
        <translation>fraction — dos patches não excluídos</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="136" />
        <source>count — a number of patches</source>
        <translation>count — um número de patches</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="145" />
        <source>Take first the patches over the polygons of</source>
        <translation>Escolher primeiro os patches sobre os polígonos de</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="148" />
        <source>Minimum overlap with those polygons (map units²)</source>
        <translation>Sobreposição mínima com esses polígonos (unidades de mapa²)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="171" />
        <source>fd: smallest number of clusters</source>
        <translation>fd: menor número de clusters</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="173" />
        <source>fd: largest number of clusters</source>
        <translation>fd: maior número de clusters</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="175" />
        <source>fd: choose k by the Vendi score (else elbow)</source>
        <translation>fd: escolher k pela pontuação de Vendi (senão, pelo cotovelo)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="177" />
        <source>fd: smallest relative Vendi gain to grow k</source>
        <translation>fd: menor ganho relativo de Vendi para aumentar k</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="180" />
        <source>lc_fd: patches taken by fd (0 = 10%)</source>
        <translation>lc_fd: patches escolhidos por fd (0 = 10%)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="182" />
        <source>fa_cb: λ, the share of fa</source>
        <translation>fa_cb: λ, a fração de fa</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="185" />
        <source>Random seed</source>
        <translation>Semente aleatória</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="193" />
        <source>Coreset</source>
        <translation>Coreset</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="196" />
        <source>Training CSV of the selected patches</source>
        <translation>CSV de treinamento dos patches selecionados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="196" />
        <source>CSV files (*.csv)</source>
        <translation>Arquivos CSV (*.csv)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="199" />
        <source>Coreset report (subset vs random)</source>
        <translation>Relatório do coreset (subconjunto vs. aleatório)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="199" />
        <source>HTML files (*.html)</source>
        <translation>Arquivos HTML (*.html)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="202" />
        <source>Selected patches</source>
        <translation>Patches selecionados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="203" />
        <source>Patches not excluded</source>
        <translation>Patches não excluídos</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="208" />
        <source>lc — label complexity (class entropy)</source>
        <translation>lc — complexidade dos rótulos (entropia de classes)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="209" />
        <source>cb — class balance (greedy)</source>
        <translation>cb — balanceamento de classes (guloso)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="212" />
        <source>lc_fd — first by fd, then by lc</source>
        <translation>lc_fd — primeiro por fd, depois por lc</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="213" />
        <source>fa_cb — blend of fa and cb</source>
        <translation>fa_cb — mistura de fa e cb</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="262" />
        <source>Could not reproject a polygon of '{}' to the CRS of the patches.</source>
        <translation>Não foi possível reprojetar um polígono de '{}' para o SRC dos patches.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="266" />
        <source>{} polygons of '{}' reprojected from {} to {}.</source>
        <translation>{} polígonos de '{}' reprojetados de {} para {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="326" />
        <source>The sub-pool expression '{}' cannot be read: {}</source>
        <translation>A expressão do subconjunto de candidatos '{}' não pode ser lida: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="378" />
        <source>Method {} reads the DINOv2 embeddings: give the embedding cache (Parquet) that 'Compute DINOv2 uniqueness' wrote.</source>
        <translation>O método {} lê os embeddings DINOv2: informe o cache de embeddings (Parquet) gravado por 'Calcular singularidade DINOv2'.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="402" />
        <source>the input layer</source>
        <translation>a camada de entrada</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="431" />
        <source>fd: {} clusters of embeddings.</source>
        <translation>fd: {} clusters de embeddings.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="442" />
        <source>No patch was selected (every patch is excluded); there is no training CSV to write.</source>
        <translation>Nenhum patch foi selecionado (todos os patches estão excluídos); não há CSV de treinamento a gravar.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="453" />
        <source>No patch was selected (every patch is excluded); there is no report to write.</source>
        <translation>Nenhum patch foi selecionado (todos os patches estão excluídos); não há relatório a gravar.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="465" />
        <source>Training CSV: {}</source>
        <translation>CSV de treinamento: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="467" />
        <source>Report: {}</source>
        <translation>Relatório: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="151" />
        <source>At most n selected patches per grid cell (0 = off)</source>
        <translation>No máximo n patches selecionados por célula da grade (0 = desativado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="161" />
        <source>Method picks only where (e.g. "cls_4" &gt; 0.5)</source>
        <translation>O método escolhe apenas onde (por exemplo "cls_4" &gt; 0.5)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="295" />
        <source>{} patches overlap the polygons of '{}' by at least {} map units²; the {} of them that are not excluded are taken first.</source>
        <translation>{} patches se sobrepõem aos polígonos de '{}' em pelo menos {} unidades de mapa²; os {} deles que não estão excluídos são escolhidos primeiro.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="301" />
        <source>The minimum overlap ({} map units²) is larger than the largest patch ({:.6g} map units²): no patch can reach it. Lower it.</source>
        <translation>A sobreposição mínima ({} unidades de mapa²) é maior que o maior patch ({:.6g} unidades de mapa²): nenhum patch consegue alcançá-la. Reduza-a.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="331" />
        <source>The sub-pool expression '{}' names {}, which the input layer does not have; its fields are {}.</source>
        <translation>A expressão do subconjunto de candidatos '{}' cita {}, que a camada de entrada não tem; os campos dela são {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="428" />
        <source>{} of {} patches selected (budget {}); by step: {}.</source>
        <translation>{} de {} patches selecionados (orçamento {}); por etapa: {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="168" />
        <source>Model in the embedding cache</source>
        <translation>Modelo no cache de embeddings</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="210" />
        <source>fd — feature diversity</source>
        <translation>fd — diversidade de características</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="211" />
        <source>fa — feature activation</source>
        <translation>fa — ativação de características</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="158" />
        <source>Minimum distance between selected patches (0 = off)</source>
        <translation>Distância mínima entre patches selecionados (0 = desativado)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="164" />
        <source>Method's own budget (0 = the rest of the budget)</source>
        <translation>Orçamento próprio do método (0 = o restante do orçamento)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="142" />
        <source>Embedding cache (Parquet file or folder)</source>
        <translation>Cache de embeddings (arquivo Parquet ou pasta)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="142" />
        <source>Parquet files (*.parquet);;All files (*)</source>
        <translation>Arquivos Parquet (*.parquet);;Todos os arquivos (*)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="155" />
        <source>Grid cell size</source>
        <translation>Tamanho da célula da grade</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="243" />
        <source>The patch layer's CRS {} is geographic: the grid cell size and the minimum distance are in degrees (1 degree is about 111 km). Give them in degrees, or reproject the layer to a projected CRS to give them in meters.</source>
        <translation>O SRC {} da camada de patches é geográfico: o tamanho da célula da grade e a distância mínima estão em graus (1 grau equivale a cerca de 111 km). Informe-os em graus, ou reprojete a camada para um SRC projetado para informá-los em metros.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="250" />
        <source>'{}' holds {} geometries; patches are taken first over polygons (areas): give a polygon layer, e.g. a buffer of the lines or points.</source>
        <translation>'{}' contém geometrias do tipo {}; os patches são tomados primeiro sobre polígonos (áreas): forneça uma camada de polígonos, p. ex. um buffer das linhas ou pontos.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset.py" line="97" />
        <source>Picks the most informative subset of the patches when the compute budget allows training on only part of them (pytorch-smt-tools select-coreset). Writes the layer with coreset_score (the method's score, higher = picked earlier by the method), coreset_selected, selection_step and selection_rank (the pick order over all steps: 1 = first, 0 = not selected), styled selected / not selected, and a training CSV of the selected patches (Combine's columns, sampler weights re-normalised to mean 1 over the subset). Excluded patches are never selected.

&lt;b&gt;Method&lt;/b&gt;: &lt;i&gt;lc&lt;/i&gt; = class_entropy / its maximum; &lt;i&gt;cb&lt;/i&gt; = greedy class balance, each pick the patch that makes the summed class distribution of the subset most even; &lt;i&gt;fd&lt;/i&gt; = KMeans on the DINOv2 embeddings, then round-robin over the clusters; &lt;i&gt;fa&lt;/i&gt; = mean × spread of each embedding; &lt;i&gt;lc_fd&lt;/i&gt; = the first m patches by fd, then by lc; &lt;i&gt;fa_cb&lt;/i&gt; = λ·fa + (1 − λ)·cb. fd, fa, lc_fd and fa_cb read the embeddings from the Parquet cache that Compute DINOv2 uniqueness wrote; when it holds embeddings of several models, name the model (advanced).
&lt;b&gt;Budget&lt;/b&gt;: a fraction of the patches that are not excluded (0.3 = 30%), or a number of patches, as the budget mode says.
&lt;b&gt;Vector layer&lt;/b&gt; (optional): patches whose footprint covers at least the minimum area (map units of the patch layer, squared) of its polygons, e.g. mapped rare-class areas, are taken first, best score first, up to the budget; the method fills the rest. The layer may be in another CRS.
&lt;b&gt;Sub-pool&lt;/b&gt; (optional): an expression such as "cls_4" &gt; 0.5; the method then scores and picks only those patches, up to its own budget (a fraction of the patches not excluded, or a count, as the budget mode says; 0 = the rest of the budget), and the rest of the budget is filled by class entropy over all patches.
&lt;b&gt;Spatial diversity&lt;/b&gt; (optional): at most n selected patches per grid cell of a given size, or a minimum distance between selected footprint centroids. A patch it refuses is skipped; what the method cannot fill is filled by class entropy, under the same rule. selection_step says which step took each patch: vector, the method's name, or fill.
The log and the report (HTML, optional) compare the subset with a random one of the same size: per-class pixel shares, clusters and tiles covered, and the coverage radius in embedding space.</source>
        <translation>Escolhe o subconjunto mais informativo dos patches quando o orçamento de computação só permite treinar com parte deles (pytorch-smt-tools select-coreset). Grava a camada com coreset_score (a pontuação do método, maior = escolhido antes pelo método), coreset_selected, selection_step e selection_rank (a ordem de escolha em todas as etapas: 1 = primeiro, 0 = não selecionado), estilizada como selecionados / não selecionados, e um CSV de treinamento dos patches selecionados (as colunas de Combinar pesos do amostrador, com os pesos do amostrador renormalizados para média 1 sobre o subconjunto). Patches excluídos nunca são selecionados.

&lt;b&gt;Método&lt;/b&gt;: &lt;i&gt;lc&lt;/i&gt; = class_entropy / seu máximo; &lt;i&gt;cb&lt;/i&gt; = balanceamento guloso de classes: cada escolha pega o patch que deixa mais uniforme a distribuição somada das classes do subconjunto; &lt;i&gt;fd&lt;/i&gt; = KMeans sobre os embeddings DINOv2, depois rodízio (round-robin) entre os clusters; &lt;i&gt;fa&lt;/i&gt; = média × dispersão de cada embedding; &lt;i&gt;lc_fd&lt;/i&gt; = os primeiros m patches por fd, depois por lc; &lt;i&gt;fa_cb&lt;/i&gt; = λ·fa + (1 − λ)·cb. fd, fa, lc_fd e fa_cb leem os embeddings do cache Parquet gravado por Calcular singularidade DINOv2; quando ele contém embeddings de vários modelos, indique o modelo (avançado).
&lt;b&gt;Orçamento&lt;/b&gt;: uma fração dos patches não excluídos (0,3 = 30%) ou um número de patches, conforme o modo do orçamento.
&lt;b&gt;Camada vetorial&lt;/b&gt; (opcional): os patches cujo contorno cobre pelo menos a área mínima (em unidades de mapa da camada de patches, ao quadrado) dos seus polígonos, por exemplo áreas mapeadas de classes raras, são escolhidos primeiro, da melhor pontuação para a pior, até o orçamento; o método preenche o restante. A camada pode estar em outro SRC.
&lt;b&gt;Subconjunto de candidatos&lt;/b&gt; (opcional): uma expressão como "cls_4" &gt; 0.5; o método então pontua e escolhe apenas esses patches, até o seu próprio orçamento (uma fração dos patches não excluídos ou uma contagem, conforme o modo do orçamento; 0 = o restante do orçamento), e o restante do orçamento é preenchido pela entropia de classes sobre todos os patches.
&lt;b&gt;Diversidade espacial&lt;/b&gt; (opcional): no máximo n patches selecionados por célula de uma grade de tamanho dado, ou uma distância mínima entre os centroides dos contornos selecionados. Um patch recusado pela regra é pulado; o que o método não consegue preencher é preenchido pela entropia de classes, sob a mesma regra. selection_step indica qual etapa escolheu cada patch: vector, o nome do método ou fill.
O log e o relatório (HTML, opcional) comparam o subconjunto com um subconjunto aleatório do mesmo tamanho: proporções de pixels por classe, clusters e tiles cobertos e o raio de cobertura no espaço dos embeddings.</translation>
    </message>
</context>
<context>
    <name>SelectCoresetFromConfig</name>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="30" />
        <source>Select coreset from config</source>
        <translation>Configuração YAML → seleção de coreset</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="33" />
        <source>Runs the coreset: block of a pytorch-smt-tools YAML config, as `pytorch-smt-tools select-coreset config.yaml` does: reads input_csv_path (the training CSV of Combine sampler weights or build-balanced-dataset), scores its patches by method (lc, cb, fd, fa, lc_fd, fa_cb; fd, fa, lc_fd and fa_cb read the embeddings from parquet_path), keeps the budget (a fraction of the patches that are not excluded, or a count with budget_mode: count) and writes output_csv_path: the selected rows with the trainer's columns, sampler weights re-normalised to mean 1 over the subset, the score (score_column) and selection_step. Relative paths are read from the config's folder; an unknown key is an error that names it. The log compares the subset with a random one of the same size.

For the spatial steps (a vector layer's polygons first, spatial diversity) use Select coreset on the patch layer.</source>
        <translation>Executa o bloco coreset: de uma configuração YAML do pytorch-smt-tools, como faz `pytorch-smt-tools select-coreset config.yaml`: lê input_csv_path (o CSV de treinamento de Combinar pesos do amostrador ou de build-balanced-dataset), pontua seus patches pelo método (lc, cb, fd, fa, lc_fd, fa_cb; fd, fa, lc_fd e fa_cb leem os embeddings de parquet_path), mantém o orçamento (uma fração dos patches não excluídos ou uma contagem com budget_mode: count) e grava output_csv_path: as linhas selecionadas com as colunas do treinador, os pesos do amostrador renormalizados para média 1 sobre o subconjunto, a pontuação (score_column) e selection_step. Caminhos relativos são lidos a partir da pasta da configuração; uma chave desconhecida é um erro que a nomeia. O log compara o subconjunto com um subconjunto aleatório do mesmo tamanho.

Para as etapas espaciais (primeiro os polígonos de uma camada vetorial, diversidade espacial), use Selecionar coreset na camada de patches.</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="46" />
        <source>Config with a coreset: block (YAML)</source>
        <translation>Configuração com um bloco coreset: (YAML)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="46" />
        <source>YAML files (*.yaml *.yml)</source>
        <translation>Arquivos YAML (*.yaml *.yml)</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="49" />
        <source>Training CSV of the selected patches</source>
        <translation>CSV de treinamento dos patches selecionados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="50" />
        <source>Method</source>
        <translation>Método</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="51" />
        <source>Selected patches</source>
        <translation>Patches selecionados</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="52" />
        <source>Patches not excluded</source>
        <translation>Patches não excluídos</translation>
    </message>
    <message>
        <location filename="../processing_provider/algorithms/select_coreset_from_config.py" line="60" />
        <source>Training CSV: {}</source>
        <translation>CSV de treinamento: {}</translation>
    </message>
</context>
<context>
    <name>SelectionStyle</name>
    <message>
        <location filename="../processing_provider/styles.py" line="306" />
        <source>selected ({})</source>
        <translation>selecionados ({})</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="311" />
        <source>selected</source>
        <translation>selecionados</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="320" />
        <source>not selected</source>
        <translation>não selecionados</translation>
    </message>
    <message>
        <location filename="../processing_provider/styles.py" line="322" />
        <source>excluded</source>
        <translation>excluídos</translation>
    </message>
</context>
<context>
    <name>file_outputs</name>
    <message>
        <location filename="../processing_provider/file_outputs.py" line="98" />
        <source>{} '{}' is a shapefile, whose field names are cut to 10 characters ({}), so the next algorithms would not find them. Write a GeoPackage (.gpkg) instead.</source>
        <translation>{} '{}' é um shapefile, cujos nomes de campo são cortados em 10 caracteres ({}), e os próximos algoritmos não os encontrariam. Grave um GeoPackage (.gpkg).</translation>
    </message>
    <message>
        <location filename="../processing_provider/file_outputs.py" line="133" />
        <source>{} '{}' is a GeoPackage that holds other layers ({}): writing the file would replace them all. Choose a new file, or write a new layer into it: in the dialog Save to GeoPackage… with a layer name, with qgis_process the destination ogr:dbname='{}' table="{}" (geom).</source>
        <translation>{} '{}' é um GeoPackage que contém outras camadas ({}): gravar o arquivo substituiria todas elas. Escolha um novo arquivo, ou grave uma nova camada nele: no diálogo, Salvar em GeoPackage… com um nome de camada; no qgis_process, o destino ogr:dbname='{}' table="{}" (geom).</translation>
    </message>
    <message>
        <location filename="../processing_provider/file_outputs.py" line="117" />
        <source>{} '{}' is named like a raster ({}), but the output is a vector layer: QGIS would write '{}.gpkg' beside it. Give a name ending in .gpkg.</source>
        <translation>{} '{}' tem nome de raster ({}), mas a saída é uma camada vetorial: o QGIS gravaria '{}.gpkg' ao lado dele. Dê um nome terminado em .gpkg.</translation>
    </message>
</context>
<context>
    <name>layers</name>
    <message>
        <location filename="../processing_provider/layers.py" line="136" />
        <source>Could not write feature {} to the output layer.</source>
        <translation>Não foi possível gravar a feição {} na camada de saída.</translation>
    </message>
    <message>
        <location filename="../processing_provider/layers.py" line="149" />
        <source>Layer {} was put in edit mode during the run, so its fields were not updated (your edits are kept). Save or discard them, leave edit mode and run again.</source>
        <translation>A camada {} foi colocada em modo de edição durante a execução, então seus campos não foram atualizados (suas edições foram mantidas). Salve-as ou descarte-as, saia do modo de edição e execute de novo.</translation>
    </message>
    <message>
        <location filename="../processing_provider/layers.py" line="153" />
        <source>Layer {} cannot be edited; write a new layer instead.</source>
        <translation>A camada {} não pode ser editada; grave uma nova camada em vez disso.</translation>
    </message>
    <message>
        <location filename="../processing_provider/layers.py" line="158" />
        <source>Could not add field '{}' to layer {}.</source>
        <translation>Não foi possível adicionar o campo '{}' à camada {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/layers.py" line="166" />
        <source>Could not update feature {} of layer {}.</source>
        <translation>Não foi possível atualizar a feição {} da camada {}.</translation>
    </message>
    <message>
        <location filename="../processing_provider/layers.py" line="169" />
        <source>Could not save layer {}: {}</source>
        <translation>Não foi possível salvar a camada {}: {}</translation>
    </message>
    <message>
        <location filename="../processing_provider/layers.py" line="199" />
        <source>Could not write patch {} to the output layer.</source>
        <translation>Não foi possível gravar o patch {} na camada de saída.</translation>
    </message>
</context>
<context>
    <name>parameters</name>
    <message>
        <location filename="../processing_provider/parameters.py" line="26" />
        <source>Image path field</source>
        <translation>Campo do caminho da imagem</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="27" />
        <source>Mask path field</source>
        <translation>Campo do caminho da máscara</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="28" />
        <source>Row offset field (pixels)</source>
        <translation>Campo do deslocamento de linha (pixels)</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="29" />
        <source>Column offset field (pixels)</source>
        <translation>Campo do deslocamento de coluna (pixels)</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="30" />
        <source>Patch size field (pixels)</source>
        <translation>Campo do tamanho do patch (pixels)</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="73" />
        <source>faiss — exact search</source>
        <translation>faiss — busca exata</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="79" />
        <source>fp32 — full precision</source>
        <translation>fp32 — precisão total</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="58" />
        <source>rank_max — higher of the two ranks (tool default)</source>
        <translation>rank_max — maior dos dois postos (padrão da ferramenta)</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="59" />
        <source>rank_multiply — product of the two ranks</source>
        <translation>rank_multiply — produto dos dois postos</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="60" />
        <source>rank_add — mean of the two ranks</source>
        <translation>rank_add — média dos dois postos</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="61" />
        <source>multiplicative — weight × uniqueness, unranked</source>
        <translation>multiplicative — peso × singularidade, sem postos</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="62" />
        <source>composition_only — composition rank</source>
        <translation>composition_only — posto da composição</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="63" />
        <source>uniqueness_only — uniqueness rank</source>
        <translation>uniqueness_only — posto da singularidade</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="72" />
        <source>hnsw — hnswlib, approximate</source>
        <translation>hnsw — hnswlib, aproximado</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="74" />
        <source>sklearn — exact, slowest</source>
        <translation>sklearn — exato, o mais lento</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="75" />
        <source>nndescent — fastest, re-scored exactly</source>
        <translation>nndescent — o mais rápido, reavaliado de forma exata</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="80" />
        <source>bf16 — faster where supported</source>
        <translation>bf16 — mais rápido onde houver suporte</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="86" />
        <source>elbow — where the inertia curve bends</source>
        <translation>elbow — onde a curva de inércia se dobra</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="87" />
        <source>fixed — the k below</source>
        <translation>fixed — o k abaixo</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="64" />
        <source>class_balanced — lifts rare classes</source>
        <translation>class_balanced — eleva as classes raras</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="65" />
        <source>target_shares — class shares you ask for</source>
        <translation>target_shares — proporções de classe que você pedir</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="66" />
        <source>repeat_factor — LVIS repeat factor</source>
        <translation>repeat_factor — fator de repetição do LVIS</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="67" />
        <source>rare_class_sampling — DAFormer</source>
        <translation>rare_class_sampling — DAFormer</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="76" />
        <source>torch — exact, on the GPU when there is one</source>
        <translation>torch — exato, na GPU quando houver uma</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="81" />
        <source>int8 — quantised, fastest on the CPU</source>
        <translation>int8 — quantizado, o mais rápido na CPU</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="82" />
        <source>fp16 — half precision, for GPUs</source>
        <translation>fp16 — meia precisão, para GPUs</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="83" />
        <source>auto — bf16 where the CPU or GPU has it, else fp32 / fp16</source>
        <translation>auto — bf16 onde a CPU ou a GPU o suporta; senão, fp32 / fp16</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="91" />
        <source>Drop partial windows</source>
        <translation>Descartar janelas parciais</translation>
    </message>
    <message>
        <location filename="../processing_provider/parameters.py" line="92" />
        <source>Shift inward to the edge</source>
        <translation>Deslocar para dentro até a borda</translation>
    </message>
</context>
<context>
    <name>utils</name>
    <message>
        <location filename="../processing_provider/utils.py" line="45" />
        <source>Canceled by the user; nothing was written.</source>
        <translation>Cancelado pelo usuário; nada foi gravado.</translation>
    </message>
    <message>
        <location filename="../processing_provider/utils.py" line="58" />
        <source>Algorithm {} is not registered.</source>
        <translation>O algoritmo {} não está registrado.</translation>
    </message>
    <message>
        <location filename="../processing_provider/utils.py" line="65" />
        <source>{} did not finish.</source>
        <translation>{} não terminou.</translation>
    </message>
</context>
</TS>
