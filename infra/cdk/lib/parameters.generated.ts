// Generated from infra/template.yaml by infra/tools/cdk_params.py --write; do not edit by hand.
// tests/python/test_infra_cdk.py fails when it is stale.

/** The SAM template's parameters, one typed prop each (same name, camelCase). */
export interface DriftLoopParameters {
  /**
   * Model Registry group the loop manages (lower case - SageMaker ARNs are lower case, and the IAM policies match them).
   *
   * @default "driftloop-demo"
   */
  readonly modelPackageGroupName?: string;
  /**
   * The SageMaker model-build pipeline retrain-on-alarm starts.
   *
   * @default "churn-build"
   */
  readonly pipelineName?: string;
  /**
   * Role the SageMaker models deploy-on-approval creates run with (passed with iam:PassRole to sagemaker.amazonaws.com only).
   */
  readonly sageMakerExecutionRoleArn: string;
  /**
   * Bucket of the model packages' artifacts and baselines (read-only - statistics and constraints).
   *
   * @default "driftloop-demo-models"
   */
  readonly modelArtifactsBucketName?: string;
  /**
   * Staging endpoint - serves the latest approved package.
   *
   * @default "churn-staging"
   */
  readonly stagingEndpointName?: string;
  /**
   * Production endpoint - serves the latest promoted package. Empty turns production off (custom-metrics then monitors staging).
   *
   * @default "churn-prod"
   */
  readonly productionEndpointName?: string;
  /**
   * Instance type of the staging endpoint.
   *
   * @default "ml.m5.large"
   */
  readonly stagingInstanceType?: string;
  /**
   * Instance type of the production endpoint.
   *
   * @default "ml.m5.large"
   */
  readonly productionInstanceType?: string;
  /**
   * Instance count of the production endpoint.
   *
   * @default 1
   */
  readonly productionInstanceCount?: number;
  /**
   * Blue/green traffic shifting of production updates (ALL_AT_ONCE, CANARY:<percent>, LINEAR:<percent>); empty for a plain update.
   *
   * @default ""
   */
  readonly productionDeployment?: string;
  /**
   * Data capture sampling percentage of the endpoints deploy-on-approval creates.
   *
   * @default 100
   */
  readonly captureSamplingPercentage?: number;
  /**
   * Name of the data bucket the stack creates (capture, ground truth and reports, under the prefixes below); empty for a name CloudFormation derives from the stack name.
   *
   * @default ""
   */
  readonly dataBucketName?: string;
  /**
   * Key prefix of the endpoints' data capture (no leading or trailing slash).
   *
   * @default "capture"
   */
  readonly capturePrefix?: string;
  /**
   * Key prefix of the ground-truth labels; an upload under it triggers custom-metrics.
   *
   * @default "ground-truth/churn"
   */
  readonly groundTruthPrefix?: string;
  /**
   * Key prefix of the staging endpoint's own ground-truth labels (model quality of staging); empty monitors staging's data quality only. Never the same as GroundTruthPrefix (one endpoint's labels would be the other's unmatched labels).
   *
   * @default ""
   */
  readonly stagingGroundTruthPrefix?: string;
  /**
   * Key prefix of custom-metrics' reports (statistics.json, constraint_violations.json, summary).
   *
   * @default "reports"
   */
  readonly reportPrefix?: string;
  /**
   * The model's problem type (which model-quality metrics custom-metrics computes). Empty for data-quality-only monitoring - no ground truth, no model-quality alarm (alarm on drift with DriftAlarmFeatures).
   *
   * @default "BinaryClassification"
   */
  readonly problemType?: "" | "Regression" | "BinaryClassification" | "MulticlassClassification" | "Forecast";
  /**
   * Attribute (JSON path or CSV index) of the predicted label in the captured output; empty for the whole output.
   *
   * @default ""
   */
  readonly inferenceAttribute?: string;
  /**
   * Attribute of the predicted probability in the captured output (binary classification); empty when there is none.
   *
   * @default "0"
   */
  readonly probabilityAttribute?: string;
  /**
   * A binary prediction is positive when its probability is strictly above this threshold (Model Monitor's rule).
   *
   * @default "0.5"
   */
  readonly probabilityThreshold?: string;
  /**
   * Forecast - the quantiles scored (wQL_<q>, mean_wQL), 1 to 20 distinct numbers strictly between 0 and 1 (the keys of DeepAR's quantiles output).
   *
   * @default "0.1,0.5,0.9"
   */
  readonly forecastQuantiles?: string;
  /**
   * Forecast - MASE's seasonality m (e.g. 24 for hourly series with a daily cycle).
   *
   * @default 1
   */
  readonly forecastSeasonality?: number;
  /**
   * Names of the captured CSV columns in their order (output columns first), comma separated and distinct; empty to take them from the data-quality baseline by position (Model Monitor's rule).
   *
   * @default ""
   */
  readonly featureNames?: string;
  /**
   * Prediction drift - the key, in ModelArtifactsBucketName, of the model output's baseline (a statistics.json, e.g. the prediction_statistics.json of driftloop-metrics run --prediction-drift) used for every package (PREDICTION_BASELINE_S3_URI); empty to take each served package's own (CustomerMetadataProperties driftloop:prediction-baseline).
   *
   * @default ""
   */
  readonly predictionBaselineKey?: string;
  /**
   * Prediction drift - the feature of the prediction baseline that holds the model output (PREDICTION_FEATURE); without a prediction baseline file, that column of the package's data-quality statistics.json (e.g. _c0) is the baseline. Empty - prediction, else the file's only feature.
   *
   * @default ""
   */
  readonly predictionFeature?: string;
  /**
   * With production on (and real-time capture), also monitor the staging endpoint against the package it serves (a second custom-metrics function, as Model Monitor has one schedule per endpoint).
   *
   * @default "true"
   */
  readonly monitorStaging?: "true" | "false";
  /**
   * Data-quality statistics and checks (feature_baseline_drift_<feature>, ...); auto turns them on with a data-quality baseline in the model package or without a ProblemType.
   *
   * @default "auto"
   */
  readonly dataQuality?: "auto" | "true" | "false";
  /**
   * realtime monitors the endpoint's data capture; batchTransform monitors batch transform jobs whose DataCaptureConfig DestinationS3Uri is s3://<data bucket>/<CapturePrefix> (manifests under input/ and output/); metrics then go to aws/sagemaker/ModelMonitoring/... with the MonitoringSchedule dimension only.
   *
   * @default "realtime"
   */
  readonly captureMode?: "realtime" | "batchTransform";
  /**
   * Batch transform - the output rows the manifests list (csv with the generated inference id and time last, or json with SageMakerInferenceId).
   *
   * @default "csv"
   */
  readonly batchOutputFormat?: "csv" | "json";
  /**
   * Batch transform - the bucket of the transform jobs' S3OutputPath (read-only, under BatchOutputPrefix); empty for the data bucket.
   *
   * @default ""
   */
  readonly batchOutputBucketName?: string;
  /**
   * Batch transform - the key prefix of the transform jobs' output files the capture manifests list (read-only).
   *
   * @default "transform"
   */
  readonly batchOutputPrefix?: string;
  /**
   * The custom metric the alarm watches (Model Monitor's names - auc, f2, accuracy, rmse, ...).
   *
   * @default "auc"
   */
  readonly metricName?: string;
  /**
   * One CloudWatch namespace for all of custom-metrics' metrics; empty for Model Monitor's (aws/sagemaker/Endpoints/model-metrics and .../data-metrics), so existing Model Monitor dashboards and alarms keep working.
   *
   * @default ""
   */
  readonly metricsNamespace?: string;
  /**
   * Value of the MonitoringSchedule dimension of the metrics (Model Monitor compatible dashboards and alarms).
   *
   * @default "churn-model-quality"
   */
  readonly monitoringScheduleName?: string;
  /**
   * When custom-metrics evaluates the last complete window.
   *
   * @default "rate(1 hour)"
   */
  readonly metricsSchedule?: string;
  /**
   * Length of custom-metrics' evaluation window; it divides a day or is a whole number of days up to 31 (the function refuses other lengths at start). Keep MetricsSchedule at the same period.
   *
   * @default 60
   */
  readonly windowMinutes?: 1 | 2 | 3 | 4 | 5 | 6 | 8 | 9 | 10 | 12 | 15 | 16 | 18 | 20 | 24 | 30 | 32 | 36 | 40 | 45 | 48 | 60 | 72 | 80 | 90 | 96 | 120 | 144 | 160 | 180 | 240 | 288 | 360 | 480 | 720 | 1440 | 2880 | 4320 | 5760 | 7200 | 8640 | 10080 | 11520 | 12960 | 14400 | 15840 | 17280 | 18720 | 20160 | 21600 | 23040 | 24480 | 25920 | 27360 | 28800 | 30240 | 31680 | 33120 | 34560 | 36000 | 37440 | 38880 | 40320 | 41760 | 43200 | 44640;
  /**
   * How far back the scheduled window ends, so late ground truth is in (like Model Monitor's EndTimeOffset); at most 31 days.
   *
   * @default 60
   */
  readonly windowOffsetMinutes?: number;
  /**
   * Labels of a window are read from the hour folders up to this long after its end (labels land under their upload hour); usually WindowOffsetMinutes; at most 31 days.
   *
   * @default 60
   */
  readonly groundTruthDelayMinutes?: number;
  /**
   * A window whose listed input (capture + ground truth) exceeds this many bytes is computed by the scale-out state machine (ScaleOutStateMachine) instead of one custom-metrics invocation; 0 scales out only on request ("scaleOut" true in a direct invocation). Default 8 GiB.
   *
   * @default 8589934592
   */
  readonly scaleOutBytes?: number;
  /**
   * Input bytes of one scale-out worker (one Map item); default 128 MiB (a worker needs up to ~7 bytes of memory per label byte, docs/scale-out.md).
   *
   * @default 134217728
   */
  readonly scaleOutSliceBytes?: number;
  /**
   * Workers of one scale-out run at a time (the Distributed Map's MaxConcurrency; they share the account's Lambda concurrency, 1,000 by default).
   *
   * @default 100
   */
  readonly scaleOutMaxConcurrency?: number;
  /**
   * Alarms whose name starts with <stack name>.<this> start retraining when they enter ALARM - this stack's alarm (<stack name>.<prefix>model-quality-<metric>) and any other you name so (Model Monitor's data-quality alarms, ...).
   *
   * @default "churn-"
   */
  readonly alarmNamePrefix?: string;
  /**
   * Threshold of the model-quality alarm (deploy-on-approval moves it to the deployed package's constraint when AlarmFollowsModel is true).
   *
   * @default 0.8
   */
  readonly alarmThreshold?: number;
  /**
   * LessThan... for scores (auc, f1, accuracy), GreaterThan... for errors (rmse, mae).
   *
   * @default "LessThanThreshold"
   */
  readonly alarmComparisonOperator?: "LessThanThreshold" | "LessThanOrEqualToThreshold" | "GreaterThanThreshold" | "GreaterThanOrEqualToThreshold";
  /**
   * Period of the alarm (match the metrics schedule).
   *
   * @default 3600
   */
  readonly alarmPeriodSeconds?: 300 | 900 | 3600 | 21600 | 86400;
  /**
   * Periods (and datapoints) that must breach.
   *
   * @default 1
   */
  readonly alarmEvaluationPeriods?: number;
  /**
   * Windows without ground truth publish no metric; ignore keeps the alarm state so a gap never flips ALARM->INSUFFICIENT_DATA->ALARM into a second retrain.
   *
   * @default "ignore"
   */
  readonly alarmTreatMissingData?: "ignore" | "missing" | "notBreaching" | "breaching";
  /**
   * After a deployment, set the alarm threshold from the deployed package's model-quality constraint on MetricName.
   *
   * @default "true"
   */
  readonly alarmFollowsModel?: "true" | "false";
  /**
   * Up to 5 features (comma separated, as the data-quality baseline names them) with a drift alarm each, <stack name>.<AlarmNamePrefix>feature-drift-<feature> on feature_baseline_drift_<feature> > DriftAlarmThreshold (starts retraining like the model-quality alarm). Empty for none.
   *
   * @default ""
   */
  readonly driftAlarmFeatures?: string;
  /**
   * Threshold of the drift alarms - the baseline distance above which a feature has drifted (Model Monitor's default comparison_threshold is 0.1).
   *
   * @default 0.1
   */
  readonly driftAlarmThreshold?: number;
  /**
   * Time-based retraining (skipped when a drift-triggered retrain succeeded within RetrainSchedulePeriod); empty turns it off.
   *
   * @default "cron(0 3 ? * MON *)"
   */
  readonly retrainSchedule?: string;
  /**
   * The period of RetrainSchedule.
   *
   * @default "7d"
   */
  readonly retrainSchedulePeriod?: string;
  /**
   * No new pipeline execution while one started less than this long ago.
   *
   * @default "24h"
   */
  readonly cooldown?: string;
  /**
   * Alarm, schedule and request events older than this (a late redelivery, an archive replay) start nothing; 0 for no limit.
   *
   * @default "24h"
   */
  readonly maxTriggerAge?: string;
  /**
   * Per-trigger pipelines, alarm or schedule-rule name (a trailing * matches a prefix) to pipeline, e.g. fraud-*=fraud-build; other triggers start PipelineName. Empty for none.
   *
   * @default ""
   */
  readonly alarmPipelines?: string;
  /**
   * The pipelines AlarmPipelines names, as one name or prefix* (e.g. fraud-*); retrain-on-alarm may start those too. Empty when AlarmPipelines is.
   *
   * @default ""
   */
  readonly alarmPipelinesPattern?: string;
  /**
   * Fixed pipeline parameters, a JSON object; empty for none.
   *
   * @default ""
   */
  readonly pipelineParameters?: string;
  /**
   * Trigger facts passed as pipeline parameters, e.g. alarm=TriggerAlarm,value=DriftValue (the pipeline must define them); empty for none.
   *
   * @default ""
   */
  readonly contextParameters?: string;
  /**
   * Bus of driftloop's outcome events (Model Deployed, Retraining Started, ...); requests come in on the control bus only (ControlPrincipals).
   *
   * @default "default"
   */
  readonly eventBusName?: string;
  /**
   * Namespace of retrain-on-alarm's RetrainingStarted / RetrainingSkipped counts (the dashboard's retraining marks).
   *
   * @default "driftloop"
   */
  readonly loopMetricsNamespace?: string;
  /**
   * Application log level of the functions (JSON logs).
   *
   * @default "INFO"
   */
  readonly logLevel?: "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL";
  /**
   * IAM principal ARNs (roles, users; comma-separated) that may put the loop's requests (Model Promotion Requested, Retrain Requested, Model Monitoring Requested) on the stack's control bus; empty for nobody (the loop then takes no requests).
   *
   * @default ""
   */
  readonly controlPrincipals?: string[];
  /**
   * The model catalogue, one JSON document (s3://bucket/key.json, README "Many models (catalogue)"; check it with driftloop-metrics catalogue validate) that deploy-on-approval, retrain-on-alarm and custom-metrics (its schedule monitors every model's monitored endpoints) read on every invocation - an upload takes effect on the next event, without a stack update. Empty for the one model of these parameters.
   *
   * @default ""
   */
  readonly catalogueS3Uri?: string;
  /**
   * Retention of the functions' log groups.
   *
   * @default 30
   */
  readonly logRetentionDays?: 1 | 3 | 5 | 7 | 14 | 30 | 60 | 90 | 120 | 150 | 180 | 365 | 400 | 545 | 731 | 1096 | 1827 | 2192 | 2557 | 2922 | 3288 | 3653;
  /**
   * An email address subscribed to the notifications topic (violations, retraining started/skipped, deployments done/failed/rolled back, operational alarms); empty for no subscription (subscribe to the topic yourself - output NotificationTopicArn). The address receives a confirmation mail first.
   *
   * @default ""
   */
  readonly notificationEmail?: string;
  /**
   * Comma-separated CloudWatch alarms (at most 10) that roll a production update back (UpdateEndpoint DeploymentConfig.AutoRollbackConfiguration; blue/green per ProductionDeployment, SageMaker's all-at-once when empty). A failed or rolled-back update is recorded on the package and not retried until a new approval or a promotion request. Empty for none.
   *
   * @default ""
   */
  readonly productionRollbackAlarms?: string;
  /**
   * Production autoscaling - maximum instances of the served variant (target tracking on SageMakerVariantInvocationsPerInstance, registered once the endpoint serves a package); 0 turns autoscaling off.
   *
   * @default 0
   */
  readonly productionAutoScalingMaxCapacity?: number;
  /**
   * Production autoscaling - minimum instances (at most ProductionAutoScalingMaxCapacity).
   *
   * @default 1
   */
  readonly productionAutoScalingMinCapacity?: number;
  /**
   * Production autoscaling - invocations per instance per minute the policy keeps the variant at.
   *
   * @default 100
   */
  readonly productionAutoScalingTargetInvocations?: number;
}

/** A parameter's CloudFormation definition (as in template.yaml). */
export interface ParameterDefinition {
  readonly prop: keyof DriftLoopParameters;
  readonly type: 'String' | 'Number' | 'CommaDelimitedList';
  readonly default?: string | number;
  readonly allowedValues?: ReadonlyArray<string | number>;
  readonly allowedPattern?: string;
  readonly minValue?: number;
  readonly maxValue?: number;
  readonly description?: string;
}

/** Parameter name -> definition, in template.yaml's order. */
export const PARAMETERS: Readonly<Record<string, ParameterDefinition>> = {
  ModelPackageGroupName: { prop: "modelPackageGroupName", type: "String", default: "driftloop-demo", allowedPattern: "^[a-z0-9](-*[a-z0-9]){0,62}$", description: "Model Registry group the loop manages (lower case - SageMaker ARNs are lower case, and the IAM policies match them)." },
  PipelineName: { prop: "pipelineName", type: "String", default: "churn-build", allowedPattern: "^[a-z0-9](-*[a-z0-9]){0,255}$", description: "The SageMaker model-build pipeline retrain-on-alarm starts." },
  SageMakerExecutionRoleArn: { prop: "sageMakerExecutionRoleArn", type: "String", allowedPattern: "^arn:aws[a-z-]*:iam::\\d{12}:role/.+$", description: "Role the SageMaker models deploy-on-approval creates run with (passed with iam:PassRole to sagemaker.amazonaws.com only)." },
  ModelArtifactsBucketName: { prop: "modelArtifactsBucketName", type: "String", default: "driftloop-demo-models", allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description: "Bucket of the model packages' artifacts and baselines (read-only - statistics and constraints)." },
  StagingEndpointName: { prop: "stagingEndpointName", type: "String", default: "churn-staging", allowedPattern: "^[a-z0-9](-*[a-z0-9]){0,62}$", description: "Staging endpoint - serves the latest approved package." },
  ProductionEndpointName: { prop: "productionEndpointName", type: "String", default: "churn-prod", allowedPattern: "^$|^[a-z0-9](-*[a-z0-9]){0,62}$", description: "Production endpoint - serves the latest promoted package. Empty turns production off (custom-metrics then monitors staging)." },
  StagingInstanceType: { prop: "stagingInstanceType", type: "String", default: "ml.m5.large", description: "Instance type of the staging endpoint." },
  ProductionInstanceType: { prop: "productionInstanceType", type: "String", default: "ml.m5.large", description: "Instance type of the production endpoint." },
  ProductionInstanceCount: { prop: "productionInstanceCount", type: "Number", default: 1, minValue: 1, description: "Instance count of the production endpoint." },
  ProductionDeployment: { prop: "productionDeployment", type: "String", default: "", allowedPattern: "^$|^ALL_AT_ONCE$|^(CANARY|LINEAR):([1-9][0-9]?|100)$", description: "Blue/green traffic shifting of production updates (ALL_AT_ONCE, CANARY:<percent>, LINEAR:<percent>); empty for a plain update." },
  CaptureSamplingPercentage: { prop: "captureSamplingPercentage", type: "Number", default: 100, minValue: 1, maxValue: 100, description: "Data capture sampling percentage of the endpoints deploy-on-approval creates." },
  DataBucketName: { prop: "dataBucketName", type: "String", default: "", allowedPattern: "^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description: "Name of the data bucket the stack creates (capture, ground truth and reports, under the prefixes below); empty for a name CloudFormation derives from the stack name." },
  CapturePrefix: { prop: "capturePrefix", type: "String", default: "capture", allowedPattern: "^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$", description: "Key prefix of the endpoints' data capture (no leading or trailing slash)." },
  GroundTruthPrefix: { prop: "groundTruthPrefix", type: "String", default: "ground-truth/churn", allowedPattern: "^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$", description: "Key prefix of the ground-truth labels; an upload under it triggers custom-metrics." },
  StagingGroundTruthPrefix: { prop: "stagingGroundTruthPrefix", type: "String", default: "", allowedPattern: "^$|^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$", description: "Key prefix of the staging endpoint's own ground-truth labels (model quality of staging); empty monitors staging's data quality only. Never the same as GroundTruthPrefix (one endpoint's labels would be the other's unmatched labels)." },
  ReportPrefix: { prop: "reportPrefix", type: "String", default: "reports", allowedPattern: "^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$", description: "Key prefix of custom-metrics' reports (statistics.json, constraint_violations.json, summary)." },
  ProblemType: { prop: "problemType", type: "String", default: "BinaryClassification", allowedValues: ["", "Regression", "BinaryClassification", "MulticlassClassification", "Forecast"], description: "The model's problem type (which model-quality metrics custom-metrics computes). Empty for data-quality-only monitoring - no ground truth, no model-quality alarm (alarm on drift with DriftAlarmFeatures)." },
  InferenceAttribute: { prop: "inferenceAttribute", type: "String", default: "", description: "Attribute (JSON path or CSV index) of the predicted label in the captured output; empty for the whole output." },
  ProbabilityAttribute: { prop: "probabilityAttribute", type: "String", default: "0", description: "Attribute of the predicted probability in the captured output (binary classification); empty when there is none." },
  ProbabilityThreshold: { prop: "probabilityThreshold", type: "String", default: "0.5", allowedPattern: "^$|^(0(\\.\\d+)?|1(\\.0+)?)$", description: "A binary prediction is positive when its probability is strictly above this threshold (Model Monitor's rule)." },
  ForecastQuantiles: { prop: "forecastQuantiles", type: "String", default: "0.1,0.5,0.9", allowedPattern: "^0\\.[0-9]*[1-9][0-9]*(,0\\.[0-9]*[1-9][0-9]*){0,19}$", description: "Forecast - the quantiles scored (wQL_<q>, mean_wQL), 1 to 20 distinct numbers strictly between 0 and 1 (the keys of DeepAR's quantiles output)." },
  ForecastSeasonality: { prop: "forecastSeasonality", type: "Number", default: 1, minValue: 1, maxValue: 10000, description: "Forecast - MASE's seasonality m (e.g. 24 for hourly series with a daily cycle)." },
  FeatureNames: { prop: "featureNames", type: "String", default: "", allowedPattern: "^$|^[^,\\s][^,]*(,[^,\\s][^,]*)*$", description: "Names of the captured CSV columns in their order (output columns first), comma separated and distinct; empty to take them from the data-quality baseline by position (Model Monitor's rule)." },
  PredictionBaselineKey: { prop: "predictionBaselineKey", type: "String", default: "", allowedPattern: "^$|^[^/\\s]\\S*$", description: "Prediction drift - the key, in ModelArtifactsBucketName, of the model output's baseline (a statistics.json, e.g. the prediction_statistics.json of driftloop-metrics run --prediction-drift) used for every package (PREDICTION_BASELINE_S3_URI); empty to take each served package's own (CustomerMetadataProperties driftloop:prediction-baseline)." },
  PredictionFeature: { prop: "predictionFeature", type: "String", default: "", allowedPattern: "^$|^\\S(.*\\S)?$", description: "Prediction drift - the feature of the prediction baseline that holds the model output (PREDICTION_FEATURE); without a prediction baseline file, that column of the package's data-quality statistics.json (e.g. _c0) is the baseline. Empty - prediction, else the file's only feature." },
  MonitorStaging: { prop: "monitorStaging", type: "String", default: "true", allowedValues: ["true", "false"], description: "With production on (and real-time capture), also monitor the staging endpoint against the package it serves (a second custom-metrics function, as Model Monitor has one schedule per endpoint)." },
  DataQuality: { prop: "dataQuality", type: "String", default: "auto", allowedValues: ["auto", "true", "false"], description: "Data-quality statistics and checks (feature_baseline_drift_<feature>, ...); auto turns them on with a data-quality baseline in the model package or without a ProblemType." },
  CaptureMode: { prop: "captureMode", type: "String", default: "realtime", allowedValues: ["realtime", "batchTransform"], description: "realtime monitors the endpoint's data capture; batchTransform monitors batch transform jobs whose DataCaptureConfig DestinationS3Uri is s3://<data bucket>/<CapturePrefix> (manifests under input/ and output/); metrics then go to aws/sagemaker/ModelMonitoring/... with the MonitoringSchedule dimension only." },
  BatchOutputFormat: { prop: "batchOutputFormat", type: "String", default: "csv", allowedValues: ["csv", "json"], description: "Batch transform - the output rows the manifests list (csv with the generated inference id and time last, or json with SageMakerInferenceId)." },
  BatchOutputBucketName: { prop: "batchOutputBucketName", type: "String", default: "", allowedPattern: "^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description: "Batch transform - the bucket of the transform jobs' S3OutputPath (read-only, under BatchOutputPrefix); empty for the data bucket." },
  BatchOutputPrefix: { prop: "batchOutputPrefix", type: "String", default: "transform", allowedPattern: "^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$", description: "Batch transform - the key prefix of the transform jobs' output files the capture manifests list (read-only)." },
  MetricName: { prop: "metricName", type: "String", default: "auc", allowedPattern: "^[A-Za-z0-9_.-]{1,64}$", description: "The custom metric the alarm watches (Model Monitor's names - auc, f2, accuracy, rmse, ...)." },
  MetricsNamespace: { prop: "metricsNamespace", type: "String", default: "", allowedPattern: "^$|^(?!AWS/)[A-Za-z0-9_./#-][A-Za-z0-9_./#:-]{0,254}$", description: "One CloudWatch namespace for all of custom-metrics' metrics; empty for Model Monitor's (aws/sagemaker/Endpoints/model-metrics and .../data-metrics), so existing Model Monitor dashboards and alarms keep working." },
  MonitoringScheduleName: { prop: "monitoringScheduleName", type: "String", default: "churn-model-quality", allowedPattern: "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description: "Value of the MonitoringSchedule dimension of the metrics (Model Monitor compatible dashboards and alarms)." },
  MetricsSchedule: { prop: "metricsSchedule", type: "String", default: "rate(1 hour)", allowedPattern: "^(rate|cron)\\(.+\\)$", description: "When custom-metrics evaluates the last complete window." },
  WindowMinutes: { prop: "windowMinutes", type: "Number", default: 60, allowedValues: [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 30, 32, 36, 40, 45, 48, 60, 72, 80, 90, 96, 120, 144, 160, 180, 240, 288, 360, 480, 720, 1440, 2880, 4320, 5760, 7200, 8640, 10080, 11520, 12960, 14400, 15840, 17280, 18720, 20160, 21600, 23040, 24480, 25920, 27360, 28800, 30240, 31680, 33120, 34560, 36000, 37440, 38880, 40320, 41760, 43200, 44640], description: "Length of custom-metrics' evaluation window; it divides a day or is a whole number of days up to 31 (the function refuses other lengths at start). Keep MetricsSchedule at the same period." },
  WindowOffsetMinutes: { prop: "windowOffsetMinutes", type: "Number", default: 60, minValue: 0, maxValue: 44640, description: "How far back the scheduled window ends, so late ground truth is in (like Model Monitor's EndTimeOffset); at most 31 days." },
  GroundTruthDelayMinutes: { prop: "groundTruthDelayMinutes", type: "Number", default: 60, minValue: 0, maxValue: 44640, description: "Labels of a window are read from the hour folders up to this long after its end (labels land under their upload hour); usually WindowOffsetMinutes; at most 31 days." },
  ScaleOutBytes: { prop: "scaleOutBytes", type: "Number", default: 8589934592, minValue: 0, description: "A window whose listed input (capture + ground truth) exceeds this many bytes is computed by the scale-out state machine (ScaleOutStateMachine) instead of one custom-metrics invocation; 0 scales out only on request (\"scaleOut\" true in a direct invocation). Default 8 GiB." },
  ScaleOutSliceBytes: { prop: "scaleOutSliceBytes", type: "Number", default: 134217728, minValue: 1048576, description: "Input bytes of one scale-out worker (one Map item); default 128 MiB (a worker needs up to ~7 bytes of memory per label byte, docs/scale-out.md)." },
  ScaleOutMaxConcurrency: { prop: "scaleOutMaxConcurrency", type: "Number", default: 100, minValue: 1, maxValue: 10000, description: "Workers of one scale-out run at a time (the Distributed Map's MaxConcurrency; they share the account's Lambda concurrency, 1,000 by default)." },
  AlarmNamePrefix: { prop: "alarmNamePrefix", type: "String", default: "churn-", allowedPattern: "^[A-Za-z0-9_.-]{1,100}$", description: "Alarms whose name starts with <stack name>.<this> start retraining when they enter ALARM - this stack's alarm (<stack name>.<prefix>model-quality-<metric>) and any other you name so (Model Monitor's data-quality alarms, ...)." },
  AlarmThreshold: { prop: "alarmThreshold", type: "Number", default: 0.8, description: "Threshold of the model-quality alarm (deploy-on-approval moves it to the deployed package's constraint when AlarmFollowsModel is true)." },
  AlarmComparisonOperator: { prop: "alarmComparisonOperator", type: "String", default: "LessThanThreshold", allowedValues: ["LessThanThreshold", "LessThanOrEqualToThreshold", "GreaterThanThreshold", "GreaterThanOrEqualToThreshold"], description: "LessThan... for scores (auc, f1, accuracy), GreaterThan... for errors (rmse, mae)." },
  AlarmPeriodSeconds: { prop: "alarmPeriodSeconds", type: "Number", default: 3600, allowedValues: [300, 900, 3600, 21600, 86400], description: "Period of the alarm (match the metrics schedule)." },
  AlarmEvaluationPeriods: { prop: "alarmEvaluationPeriods", type: "Number", default: 1, minValue: 1, description: "Periods (and datapoints) that must breach." },
  AlarmTreatMissingData: { prop: "alarmTreatMissingData", type: "String", default: "ignore", allowedValues: ["ignore", "missing", "notBreaching", "breaching"], description: "Windows without ground truth publish no metric; ignore keeps the alarm state so a gap never flips ALARM->INSUFFICIENT_DATA->ALARM into a second retrain." },
  AlarmFollowsModel: { prop: "alarmFollowsModel", type: "String", default: "true", allowedValues: ["true", "false"], description: "After a deployment, set the alarm threshold from the deployed package's model-quality constraint on MetricName." },
  DriftAlarmFeatures: { prop: "driftAlarmFeatures", type: "String", default: "", allowedPattern: "^$|^[A-Za-z0-9_.-]{1,128}(,[A-Za-z0-9_.-]{1,128}){0,4}$", description: "Up to 5 features (comma separated, as the data-quality baseline names them) with a drift alarm each, <stack name>.<AlarmNamePrefix>feature-drift-<feature> on feature_baseline_drift_<feature> > DriftAlarmThreshold (starts retraining like the model-quality alarm). Empty for none." },
  DriftAlarmThreshold: { prop: "driftAlarmThreshold", type: "Number", default: 0.1, minValue: 0, description: "Threshold of the drift alarms - the baseline distance above which a feature has drifted (Model Monitor's default comparison_threshold is 0.1)." },
  RetrainSchedule: { prop: "retrainSchedule", type: "String", default: "cron(0 3 ? * MON *)", allowedPattern: "^$|^(rate|cron)\\(.+\\)$", description: "Time-based retraining (skipped when a drift-triggered retrain succeeded within RetrainSchedulePeriod); empty turns it off." },
  RetrainSchedulePeriod: { prop: "retrainSchedulePeriod", type: "String", default: "7d", allowedPattern: "^[0-9]+[smhdw]$", description: "The period of RetrainSchedule." },
  Cooldown: { prop: "cooldown", type: "String", default: "24h", allowedPattern: "^0$|^[0-9]+[smhdw]$", description: "No new pipeline execution while one started less than this long ago." },
  MaxTriggerAge: { prop: "maxTriggerAge", type: "String", default: "24h", allowedPattern: "^0$|^[0-9]+[smhdw]$", description: "Alarm, schedule and request events older than this (a late redelivery, an archive replay) start nothing; 0 for no limit." },
  AlarmPipelines: { prop: "alarmPipelines", type: "String", default: "", description: "Per-trigger pipelines, alarm or schedule-rule name (a trailing * matches a prefix) to pipeline, e.g. fraud-*=fraud-build; other triggers start PipelineName. Empty for none." },
  AlarmPipelinesPattern: { prop: "alarmPipelinesPattern", type: "String", default: "", allowedPattern: "^$|^[a-zA-Z0-9-]+\\*?$", description: "The pipelines AlarmPipelines names, as one name or prefix* (e.g. fraud-*); retrain-on-alarm may start those too. Empty when AlarmPipelines is." },
  PipelineParameters: { prop: "pipelineParameters", type: "String", default: "", description: "Fixed pipeline parameters, a JSON object; empty for none." },
  ContextParameters: { prop: "contextParameters", type: "String", default: "", description: "Trigger facts passed as pipeline parameters, e.g. alarm=TriggerAlarm,value=DriftValue (the pipeline must define them); empty for none." },
  EventBusName: { prop: "eventBusName", type: "String", default: "default", allowedPattern: "^[A-Za-z0-9._-]{1,256}$", description: "Bus of driftloop's outcome events (Model Deployed, Retraining Started, ...); requests come in on the control bus only (ControlPrincipals)." },
  LoopMetricsNamespace: { prop: "loopMetricsNamespace", type: "String", default: "driftloop", allowedPattern: "^[A-Za-z0-9_./#:-]{1,255}$", description: "Namespace of retrain-on-alarm's RetrainingStarted / RetrainingSkipped counts (the dashboard's retraining marks)." },
  LogLevel: { prop: "logLevel", type: "String", default: "INFO", allowedValues: ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], description: "Application log level of the functions (JSON logs)." },
  ControlPrincipals: { prop: "controlPrincipals", type: "CommaDelimitedList", default: "", description: "IAM principal ARNs (roles, users; comma-separated) that may put the loop's requests (Model Promotion Requested, Retrain Requested, Model Monitoring Requested) on the stack's control bus; empty for nobody (the loop then takes no requests)." },
  CatalogueS3Uri: { prop: "catalogueS3Uri", type: "String", default: "", allowedPattern: "^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^*?]+$", description: "The model catalogue, one JSON document (s3://bucket/key.json, README \"Many models (catalogue)\"; check it with driftloop-metrics catalogue validate) that deploy-on-approval, retrain-on-alarm and custom-metrics (its schedule monitors every model's monitored endpoints) read on every invocation - an upload takes effect on the next event, without a stack update. Empty for the one model of these parameters." },
  LogRetentionDays: { prop: "logRetentionDays", type: "Number", default: 30, allowedValues: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], description: "Retention of the functions' log groups." },
  NotificationEmail: { prop: "notificationEmail", type: "String", default: "", allowedPattern: "^$|^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", description: "An email address subscribed to the notifications topic (violations, retraining started/skipped, deployments done/failed/rolled back, operational alarms); empty for no subscription (subscribe to the topic yourself - output NotificationTopicArn). The address receives a confirmation mail first." },
  ProductionRollbackAlarms: { prop: "productionRollbackAlarms", type: "String", default: "", allowedPattern: "^$|^[^,]{1,255}(,[^,]{1,255}){0,9}$", description: "Comma-separated CloudWatch alarms (at most 10) that roll a production update back (UpdateEndpoint DeploymentConfig.AutoRollbackConfiguration; blue/green per ProductionDeployment, SageMaker's all-at-once when empty). A failed or rolled-back update is recorded on the package and not retried until a new approval or a promotion request. Empty for none." },
  ProductionAutoScalingMaxCapacity: { prop: "productionAutoScalingMaxCapacity", type: "Number", default: 0, minValue: 0, description: "Production autoscaling - maximum instances of the served variant (target tracking on SageMakerVariantInvocationsPerInstance, registered once the endpoint serves a package); 0 turns autoscaling off." },
  ProductionAutoScalingMinCapacity: { prop: "productionAutoScalingMinCapacity", type: "Number", default: 1, minValue: 1, description: "Production autoscaling - minimum instances (at most ProductionAutoScalingMaxCapacity)." },
  ProductionAutoScalingTargetInvocations: { prop: "productionAutoScalingTargetInvocations", type: "Number", default: 100, minValue: 1, description: "Production autoscaling - invocations per instance per minute the policy keeps the variant at." },
};
