/**
 * DriftLoop: driftloop's closed retraining loop as one composable CDK construct.
 *
 *   const loop = new DriftLoop(this, 'Loop', { sageMakerExecutionRoleArn: role.roleArn, productionEndpointName: '' });
 *   loop.functions.customMetrics.addEnvironment(...);  loop.controlBus.grantPutEventsTo(myRole, 'Ops');
 *
 * The props are the SAM template's parameters (lib/parameters.generated.ts, generated from
 * infra/template.yaml), each optional with the template's default. A value may be a literal or a
 * token (e.g. a CfnParameter, which is what bin/app.ts passes to make a stack equivalent to the SAM
 * template); literals are checked against the template's AllowedValues / AllowedPattern / bounds.
 * The template's Conditions become CfnConditions (`loop.conditions`), so a resource that exists
 * under a condition in template.yaml (the staging custom-metrics function, the drift alarms, ...)
 * exists under the same condition here.
 *
 * Built from L2 constructs: cargo-lambda-cdk RustFunctions (one Cargo workspace, one binary per
 * function), events.Rule + targets.LambdaFunction (retry policy and dead-letter queue on every
 * target), sqs.Queue, logs.LogGroup, s3.Bucket, events.EventBus, iam.PolicyStatement/Policy,
 * cloudwatch.Alarm/Dashboard. Escape hatches only where CloudFormation conditions reach inside a
 * property (a conditional alarm dimension, the dashboard's conditional widgets, the control bus's
 * inline policy) or an L2 would add a custom resource (S3's EventBridge switch).
 *
 * `samLogicalIds: true` gives every resource the logical ID template.yaml's (SAM-transformed) stack
 * has: a stack deployed from template.yaml can move to this construct in place, and
 * tests/python/test_infra_cdk.py compares the two templates resource by resource. Without it (the
 * default) the IDs are CDK's own, so two loops can live in one stack.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  Aws, CfnCondition, CfnElement, CfnResource, Duration, Fn, ICfnConditionExpression, RemovalPolicy, Token, Tokenization,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { BundlingOptions, RustFunction } from 'cargo-lambda-cdk';
import { Construct, IConstruct } from 'constructs';
import { DriftLoopParameters, PARAMETERS } from './parameters.generated';

export { DriftLoopParameters, PARAMETERS } from './parameters.generated';

export interface DriftLoopProps extends DriftLoopParameters {
  /** The Cargo workspace manifest the functions are built from. @default the repository's Cargo.toml */
  readonly manifestPath?: string;
  /** cargo-lambda-cdk bundling options, shared by the functions (the architecture is arm64). */
  readonly bundling?: BundlingOptions;
  /**
   * The name the loop's named resources and alarm prefixes start with (log groups
   * /driftloop/<name>/..., the control bus <name>-control, alarms <name>.<AlarmNamePrefix>...).
   * @default the stack name (as in template.yaml)
   */
  readonly loopName?: string;
  /** template.yaml's logical IDs for every resource (one loop per stack). @default false */
  readonly samLogicalIds?: boolean;
}

/** The loop's functions. customMetricsStaging exists under `conditions.MonitorsStagingToo`. */
export interface DriftLoopFunctions {
  readonly getApprovedModel: RustFunction;
  readonly deployOnApproval: RustFunction;
  readonly retrainOnAlarm: RustFunction;
  readonly customMetrics: RustFunction;
  readonly customMetricsStaging: RustFunction;
}

/**
 * One dead-letter queue per function: EventBridge's undeliverable events and, as the function's
 * OnFailure destination, Lambda's invocation records of failed invocations (with their errorType).
 * customMetricsStaging exists under `conditions.MonitorsStagingToo`; notifications takes the
 * notifications EventBridge could not deliver to the topic.
 */
export interface DriftLoopQueues {
  readonly getApprovedModel: sqs.Queue;
  readonly deployOnApproval: sqs.Queue;
  readonly retrainOnAlarm: sqs.Queue;
  readonly customMetrics: sqs.Queue;
  readonly customMetricsStaging: sqs.Queue;
  readonly notifications: sqs.Queue;
}

const FUNCTION_SKIPS = [
  { id: 'CKV_AWS_117', comment: 'The functions call only AWS APIs; a VPC would add NAT or endpoints and no protection.' },
  { id: 'CKV_AWS_115', comment: 'Reserved concurrency would take from the account pool (accounts with the default limit cannot reserve any); duplicate deliveries are idempotent by design.' },
  { id: 'CKV_AWS_173', comment: 'The environment holds names and settings, no secrets; Lambda encrypts it at rest with its own key.' },
  { id: 'CKV_AWS_116', comment: 'Failed asynchronous invocations go to the OnFailure destination of the function\'s EventInvokeConfig (an SQS queue, with the error type), which checkov does not recognise as a DLQ.' },
];
const QUEUE_SKIPS = [
  { id: 'CKV_AWS_27', comment: 'Encrypted with SSE-SQS (SqsManagedSseEnabled), which checkov does not recognise; the AWS-managed KMS key is no option (EventBridge cannot send to queues encrypted with it).' },
];
const LOG_SKIPS = [{ id: 'CKV_AWS_158', comment: 'Logs hold no secrets; CloudWatch Logs encrypts at rest with its own key.' }];
const BUCKET_SKIPS = [
  { id: 'CKV_AWS_18', comment: 'Access logging needs a second log bucket per stack; reads and writes are by the stack\'s own roles, audit them with CloudTrail data events where required.' },
];
const CONTROL_TYPES = ['Model Promotion Requested', 'Retrain Requested', 'Model Monitoring Requested'];
const CONTROL_ENVELOPE = '{"controlRule": "<aws.events.rule-arn>", "event": <aws.events.event.json>}';

/**
 * A function's failed asynchronous invocations recorded in a queue (OnFailure). Unlike
 * aws-lambda-destinations' SqsDestination (which also grants GetQueueAttributes and GetQueueUrl)
 * the role gets sqs:SendMessage only, as in template.yaml.
 */
class QueueDestination implements lambda.IDestination {
  constructor(private readonly queue: sqs.IQueue) {}
  public bind(_scope: Construct, fn: lambda.IFunction): lambda.DestinationConfig {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'DeadLetters', actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }));
    return { destination: this.queue.queueArn };
  }
}

/** A target input given as EventBridge's own InputTemplate (predefined variables such as <aws.events.event.json>). */
class InputTemplate extends events.RuleTargetInput {
  constructor(private readonly template: string, private readonly paths?: Record<string, string>) { super(); }
  public bind(_rule: events.IRule): events.RuleTargetInputProperties {
    return { inputTemplate: this.template, inputPathsMap: this.paths };
  }
}

type Str = string; // a literal or a token

export class DriftLoop extends Construct {
  /** The data bucket: capture, ground truth, reports, retrain leases. */
  public readonly bucket: s3.Bucket;
  /** The bus driftloop's outcome events go to (EventBusName). */
  public readonly bus: events.IEventBus;
  /** The bus the loop's requests come in on (PutEvents from ControlPrincipals only). */
  public readonly controlBus: events.EventBus;
  public readonly functions: DriftLoopFunctions;
  public readonly deadLetterQueues: DriftLoopQueues;
  public readonly logGroups: Record<string, logs.LogGroup> = {};
  public readonly rules: Record<string, events.Rule> = {};
  /** The model-quality alarm (under HasProblemType). */
  public readonly modelQualityAlarm: cloudwatch.Alarm;
  /** One drift alarm per slot of DriftAlarmFeatures (slot i under HasDriftAlarm<i+1>). */
  public readonly driftAlarms: cloudwatch.Alarm[] = [];
  public readonly dashboard: cloudwatch.Dashboard;
  /** The notifications topic (loop outcomes worth a person's attention, operational alarms), KMS-encrypted. */
  public readonly topic: sns.Topic;
  /** The key of the topic. */
  public readonly notificationKey: kms.Key;
  /** The scale-out state machine: one window computed by many custom-metrics workers, merged once. */
  public readonly scaleOut: sfn.StateMachine;
  /** Errors and throttles per function, dead letters waiting per queue, custom-metrics near its timeout: into the topic. */
  public readonly operationalAlarms: Record<string, cloudwatch.Alarm> = {};
  /** template.yaml's Conditions, by name (plus IsRealtimeCapture, the negation of IsBatchTransform). */
  public readonly conditions: Record<string, CfnCondition> = {};
  /** The values in effect (props or template defaults), as strings/tokens. */
  public readonly settings: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: DriftLoopProps) {
    super(scope, id);
    const p = resolveParameters(props);
    this.settings = p;
    const loopName = props.loopName ?? Aws.STACK_NAME;
    const manifestPath = props.manifestPath ?? workspaceManifest();
    const num = (name: string) => (Token.isUnresolved(p[name]) ? Token.asNumber(p[name]) : Number(p[name]));
    const principals = props.controlPrincipals ?? Fn.split(',', String(PARAMETERS.ControlPrincipals.default));

    // ------------------------------------------------------------------ conditions (template.yaml's)
    const c = this.conditions;
    const cond = (name: string, expression: ICfnConditionExpression) => {
      c[name] = new CfnCondition(this, name, { expression });
      return c[name];
    };
    const not = (x: ICfnConditionExpression) => Fn.conditionNot(x);
    const eq = (a: unknown, b: unknown) => Fn.conditionEquals(a, b);
    cond('HasProduction', not(eq(p.ProductionEndpointName, '')));
    cond('HasDataBucketName', not(eq(p.DataBucketName, '')));
    cond('HasRetrainSchedule', not(eq(p.RetrainSchedule, '')));
    cond('HasAlarmPipelines', not(eq(p.AlarmPipelinesPattern, '')));
    cond('HasCustomNamespace', not(eq(p.MetricsNamespace, '')));
    cond('HasProblemType', not(eq(p.ProblemType, '')));
    cond('IsForecast', eq(p.ProblemType, 'Forecast'));
    cond('IsBatchTransform', eq(p.CaptureMode, 'batchTransform'));
    cond('IsRealtimeCapture', not(c.IsBatchTransform));
    cond('HasBatchOutputBucket', not(eq(p.BatchOutputBucketName, '')));
    cond('BatchOutputInDataBucket', Fn.conditionAnd(c.IsBatchTransform, not(c.HasBatchOutputBucket)));
    cond('BatchOutputElsewhere', Fn.conditionAnd(c.IsBatchTransform, c.HasBatchOutputBucket));
    const feature = (i: number) => Fn.select(i, Fn.split(',', `${p.DriftAlarmFeatures},,,,,`));
    for (let i = 0; i < 5; i++) cond(`HasDriftAlarm${i + 1}`, not(eq(feature(i), '')));
    cond('FollowAlarm', Fn.conditionAnd(eq(p.AlarmFollowsModel, 'true'), c.HasProblemType));
    cond('FollowAlarmOnProduction', Fn.conditionAnd(c.FollowAlarm, c.HasProduction));
    cond('FollowAlarmOnStaging', Fn.conditionAnd(c.FollowAlarm, not(c.HasProduction)));
    cond('HasRollbackAlarms', Fn.conditionAnd(c.HasProduction, not(eq(p.ProductionRollbackAlarms, ''))));
    cond('HasProductionAutoScaling', Fn.conditionAnd(c.HasProduction, not(eq(num('ProductionAutoScalingMaxCapacity'), 0))));
    cond('HasFeatureNames', not(eq(p.FeatureNames, '')));
    cond('MonitorsStagingToo', Fn.conditionAnd(c.HasProduction, not(c.IsBatchTransform), eq(p.MonitorStaging, 'true')));
    cond('HasStagingGroundTruth', Fn.conditionAnd(c.MonitorsStagingToo, c.HasProblemType, not(eq(p.StagingGroundTruthPrefix, ''))));
    cond('HasControlPrincipals', not(eq(Fn.join('', principals), '')));
    cond('HasNotificationEmail', not(eq(p.NotificationEmail, '')));
    cond('HasPredictionBaselineKey', not(eq(p.PredictionBaselineKey, '')));
    cond('HasPredictionFeature', not(eq(p.PredictionFeature, '')));
    cond('HasCatalogue', not(eq(p.CatalogueS3Uri, '')));
    const iff = (name: string, yes: unknown, no: unknown): Str => Fn.conditionIf(c[name].logicalId, yes, no).toString();
    const NONE = Aws.NO_VALUE;

    // ------------------------------------------------------------------ names and ARNs
    const arn = (service: string, resource: string) => `arn:${Aws.PARTITION}:${service}:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
    const sagemaker = (resource: string) => arn('sagemaker', resource);
    const monitoredEndpoint = iff('HasProduction', p.ProductionEndpointName, p.StagingEndpointName);
    const modelNamespace = iff('HasCustomNamespace', p.MetricsNamespace,
      Fn.conditionIf(c.IsBatchTransform.logicalId, 'aws/sagemaker/ModelMonitoring/model-metrics', 'aws/sagemaker/Endpoints/model-metrics'));
    const dataNamespace = iff('HasCustomNamespace', p.MetricsNamespace,
      Fn.conditionIf(c.IsBatchTransform.logicalId, 'aws/sagemaker/ModelMonitoring/data-metrics', 'aws/sagemaker/Endpoints/data-metrics'));
    const alarmPrefix = `${loopName}.${p.AlarmNamePrefix}`;

    // ------------------------------------------------------------------ data bucket
    this.bucket = new s3.Bucket(this, 'DataBucket', {
      bucketName: iff('HasDataBucketName', p.DataBucketName, NONE),
      encryption: s3.BucketEncryption.S3_MANAGED,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [{
        id: 'expire-noncurrent', noncurrentVersionExpiration: Duration.days(30),
        abortIncompleteMultipartUploadAfter: Duration.days(7),
      }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const cfnBucket = this.bucket.node.defaultChild as s3.CfnBucket;
    // Ground-truth uploads reach custom-metrics as EventBridge "Object Created" events. (The L2's
    // eventBridgeEnabled would add the bucket-notifications custom resource and its function.)
    cfnBucket.notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
    cfnBucket.addMetadata('checkov', { skip: BUCKET_SKIPS });
    this.bucket.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'DenyInsecureTransport', effect: iam.Effect.DENY, principals: [new iam.StarPrincipal()], actions: ['s3:*'],
      resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
      conditions: { Bool: { 'aws:SecureTransport': 'false' } },
    }));
    const bucketName = this.bucket.bucketName;
    const bucketArn = this.bucket.bucketArn;

    // ------------------------------------------------------------------ dead-letter queues
    const queueConditions = new Map<sqs.Queue, CfnCondition>();
    const queue = (qid: string, condition?: string) => {
      const q = new sqs.Queue(this, qid, { retentionPeriod: Duration.days(14), encryption: sqs.QueueEncryption.SQS_MANAGED });
      (q.node.defaultChild as sqs.CfnQueue).addMetadata('checkov', { skip: QUEUE_SKIPS });
      if (condition) {
        onCondition(q, c[condition]);
        queueConditions.set(q, c[condition]);
      }
      return q;
    };
    this.deadLetterQueues = {
      getApprovedModel: queue('GetApprovedModelDLQ'),
      deployOnApproval: queue('DeployOnApprovalDLQ'),
      retrainOnAlarm: queue('RetrainOnAlarmDLQ'),
      customMetrics: queue('CustomMetricsDLQ'),
      customMetricsStaging: queue('CustomMetricsStagingDLQ', 'MonitorsStagingToo'),
      notifications: queue('NotificationDLQ'),
    };
    const q = this.deadLetterQueues;

    // ------------------------------------------------------------------ buses
    this.bus = events.EventBus.fromEventBusName(this, 'OutcomeBus', p.EventBusName);
    const controlBusName = `${loopName}-control`;
    this.controlBus = new events.EventBus(this, 'ControlBus', {
      eventBusName: controlBusName,
      description: 'driftloop control bus - Model Promotion Requested, Retrain Requested, Model Monitoring Requested from ControlPrincipals only.',
    });
    // The policy is inline (one document, as in template.yaml) because its allow statement and a
    // deny's condition exist only under HasControlPrincipals, which PolicyStatement cannot express.
    const controlBusArn = arn('events', `event-bus/${controlBusName}`);
    const denyAll = { Effect: 'Deny', Principal: '*', Action: 'events:PutEvents', Resource: controlBusArn };
    (this.controlBus.node.defaultChild as events.CfnEventBus).policy = {
      Version: '2012-10-17',
      Statement: [
        Fn.conditionIf(c.HasControlPrincipals.logicalId, {
          Sid: 'NamedPrincipalsPutRequests', Effect: 'Allow', Principal: { AWS: principals }, Action: 'events:PutEvents',
          Resource: controlBusArn,
          Condition: { StringEquals: { 'events:source': 'driftloop', 'events:detail-type': CONTROL_TYPES } },
        }, NONE),
        { Sid: 'DenyOtherPrincipals', ...denyAll,
          Condition: Fn.conditionIf(c.HasControlPrincipals.logicalId, { ArnNotEquals: { 'aws:PrincipalArn': principals } }, NONE) },
        { Sid: 'DenyOtherSources', ...denyAll, Condition: { StringNotEquals: { 'events:source': 'driftloop' } } },
        { Sid: 'DenyOtherDetailTypes', ...denyAll, Condition: { StringNotEquals: { 'events:detail-type': CONTROL_TYPES } } },
      ],
    };
    const controlBusRef = (this.controlBus.node.defaultChild as events.CfnEventBus).ref;

    // ------------------------------------------------------------------ alarms
    const alarmDimensions = [
      Fn.conditionIf(c.IsBatchTransform.logicalId, NONE, { Name: 'Endpoint', Value: monitoredEndpoint }),
      { Name: 'MonitoringSchedule', Value: p.MonitoringScheduleName },
    ];
    const alarm = (aid: string, o: {
      name: Str; description: Str; namespace: Str; metricName: Str; statistic: string; threshold: number;
      operator: Str; condition: string;
    }) => {
      const a = new cloudwatch.Alarm(this, aid, {
        alarmName: o.name,
        alarmDescription: o.description,
        metric: new cloudwatch.Metric({
          namespace: o.namespace, metricName: o.metricName, statistic: o.statistic,
          // The L2 rejects a token period (it checks the value): a placeholder, overridden below.
          period: Token.isUnresolved(num('AlarmPeriodSeconds')) ? Duration.hours(1) : Duration.seconds(num('AlarmPeriodSeconds')),
        }),
        threshold: o.threshold,
        evaluationPeriods: num('AlarmEvaluationPeriods'),
        datapointsToAlarm: num('AlarmEvaluationPeriods'),
        comparisonOperator: o.operator as cloudwatch.ComparisonOperator,
        treatMissingData: p.AlarmTreatMissingData as cloudwatch.TreatMissingData,
        actionsEnabled: true,
      });
      // The Endpoint dimension exists only for real-time capture (a conditional list element).
      (a.node.defaultChild as cloudwatch.CfnAlarm).addPropertyOverride('Dimensions', alarmDimensions);
      (a.node.defaultChild as cloudwatch.CfnAlarm).addPropertyOverride('Period', num('AlarmPeriodSeconds'));
      onCondition(a, c[o.condition]);
      return a;
    };
    this.modelQualityAlarm = alarm('ModelQualityAlarm', {
      name: `${alarmPrefix}model-quality-${p.MetricName}`,
      description: `Model quality (${p.MetricName}) of the monitored endpoint crossed its threshold; entering ALARM starts retraining (rule RetrainOnAlarmRule).`,
      namespace: modelNamespace, metricName: p.MetricName, statistic: 'Average', threshold: num('AlarmThreshold'),
      operator: p.AlarmComparisonOperator, condition: 'HasProblemType',
    });
    for (let i = 0; i < 5; i++) {
      const f = feature(i);
      this.driftAlarms.push(alarm(`DriftAlarm${i + 1}`, {
        name: `${alarmPrefix}feature-drift-${f}`,
        description: `Feature ${f} drifted from its data-quality baseline (feature_baseline_drift_${f} above DriftAlarmThreshold); entering ALARM starts retraining (rule RetrainOnAlarmRule).`,
        // Maximum: one drifted window in the period is drift, however many windows the period holds.
        namespace: dataNamespace, metricName: `feature_baseline_drift_${f}`, statistic: 'Maximum',
        threshold: num('DriftAlarmThreshold'), operator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        condition: `HasDriftAlarm${i + 1}`,
      }));
    }

    // ------------------------------------------------------------------ functions
    const mkFunction = (fid: string, o: {
      binary: string; logName: string; description: string; memorySize: number; timeout: number;
      dlq: sqs.IQueue; retryAttempts: number; maxEventAge: Duration; environment: Record<string, Str>;
      statements: iam.PolicyStatement[]; conditionalStatements?: Record<string, iam.PolicyStatement[]>;
      condition?: string;
    }) => {
      const logId = `${fid.replace(/Function$/, '')}LogGroup`;
      const logGroup = new logs.LogGroup(this, logId, {
        logGroupName: `/driftloop/${loopName}/${o.logName}`,
        retention: num('LogRetentionDays') as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      (logGroup.node.defaultChild as logs.CfnLogGroup).addMetadata('checkov', { skip: LOG_SKIPS });
      this.logGroups[logId] = logGroup;
      const fn = new RustFunction(this, fid, {
        manifestPath,
        binaryName: o.binary,
        bundling: props.bundling,
        architecture: lambda.Architecture.ARM_64,
        description: o.description,
        memorySize: o.memorySize,
        timeout: Duration.seconds(o.timeout),
        environment: o.environment,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: p.LogLevel as lambda.ApplicationLogLevel,
        systemLogLevelV2: lambda.SystemLogLevel.WARN,
        // Failed invocations: after the retries, Lambda's invocation record (request, errorType,
        // errorMessage) into the function's queue.
        onFailure: new QueueDestination(o.dlq),
        retryAttempts: o.retryAttempts,
        maxEventAge: o.maxEventAge,
      });
      (fn.node.defaultChild as lambda.CfnFunction).addMetadata('checkov', { skip: FUNCTION_SKIPS });
      for (const s of o.statements) fn.addToRolePolicy(s);
      // The role dependency is implied by the Role GetAtt; an explicit one is cfn-lint W3005. (The
      // one on the role's policy stays: Lambda checks the dead-letter grant when it creates the function.)
      // The role's policy first: Lambda checks the destination grant when it creates the
      // EventInvokeConfig (which refers to the function).
      const rolePolicy = fn.role!.node.findChild('DefaultPolicy').node.defaultChild as iam.CfnPolicy;
      (fn.node.defaultChild as lambda.CfnFunction).addOverride('DependsOn', [rolePolicy.logicalId]);
      for (const [name, statements] of Object.entries(o.conditionalStatements ?? {})) {
        const policy = new iam.Policy(this, `${fid}${name}Policy`, { statements, roles: [fn.role!] });
        onCondition(policy, c[name]);
      }
      if (o.condition) {
        onCondition(fn, c[o.condition]);
        onCondition(logGroup, c[o.condition]);
      }
      return fn;
    };
    const stmt = (sid: string, actions: string[], resources: Str[], conditions?: Record<string, unknown>) =>
      new iam.PolicyStatement({ sid, actions, resources, conditions: conditions as Record<string, any> | undefined });
    const listPackages = stmt('ListPackages', ['sagemaker:ListModelPackages'], ['*']); // no resource type: cannot be scoped
    const packages = sagemaker(`model-package/${p.ModelPackageGroupName}/*`);
    const models = sagemaker(`model/${p.ModelPackageGroupName}-*`);
    const readBaselines = () => stmt('ReadBaselines', ['s3:GetObject'], [`arn:${Aws.PARTITION}:s3:::${p.ModelArtifactsBucketName}/*`]);
    const publish = (types: string[]) => stmt('PublishEvents', ['events:PutEvents'], [this.bus.eventBusArn],
      { StringEquals: { 'events:source': 'driftloop', 'events:detail-type': types } });
    const controlBusEnv = { EVENT_BUS_NAME: p.EventBusName, CONTROL_BUS_NAME: controlBusRef };
    // The model catalogue (issue 15): GetObject on its one object ("s3://" appended keeps the Select in
    // range when the parameter is blank; the statement exists only under HasCatalogue).
    const readCatalogue = () => stmt('ReadCatalogue', ['s3:GetObject'],
      [`arn:${Aws.PARTITION}:s3:::${Fn.select(1, Fn.split('s3://', `${p.CatalogueS3Uri}s3://`))}`]);
    const asyncRetries = { retryAttempts: 2, maxEventAge: Duration.hours(6) };

    const getApprovedModel = mkFunction('GetApprovedModelFunction', {
      binary: 'get-approved-model', logName: 'get-approved-model',
      description: 'driftloop get-approved-model - the latest approved package of the group (for pipelines and operators).',
      memorySize: 128, timeout: 30, dlq: q.getApprovedModel, retryAttempts: 0, maxEventAge: Duration.hours(1),
      environment: { MODEL_PACKAGE_GROUP_NAME: p.ModelPackageGroupName },
      statements: [listPackages, stmt('DescribePackages', ['sagemaker:DescribeModelPackage'], [packages])],
    });

    const prodOnly = (resource: Str) => iff('HasProduction', resource, NONE);
    const deployOnApproval = mkFunction('DeployOnApprovalFunction', {
      binary: 'deploy-on-approval', logName: 'deploy-on-approval',
      description: 'driftloop deploy-on-approval - converges staging and production endpoints to the approved and promoted packages.',
      memorySize: 256, timeout: 120, dlq: q.deployOnApproval, ...asyncRetries,
      environment: {
        MODEL_PACKAGE_GROUP_NAME: p.ModelPackageGroupName,
        SAGEMAKER_EXECUTION_ROLE_ARN: p.SageMakerExecutionRoleArn,
        STAGING_ENDPOINT_NAME: p.StagingEndpointName,
        STAGING_INSTANCE_TYPE: p.StagingInstanceType,
        PRODUCTION_ENDPOINT_NAME: p.ProductionEndpointName,
        PRODUCTION_INSTANCE_TYPE: p.ProductionInstanceType,
        PRODUCTION_INSTANCE_COUNT: p.ProductionInstanceCount,
        PRODUCTION_DEPLOYMENT: p.ProductionDeployment,
        PRODUCTION_ROLLBACK_ALARMS: p.ProductionRollbackAlarms,
        PRODUCTION_AUTOSCALING_MAX_CAPACITY: iff('HasProductionAutoScaling', p.ProductionAutoScalingMaxCapacity, '0'),
        PRODUCTION_AUTOSCALING_MIN_CAPACITY: p.ProductionAutoScalingMinCapacity,
        PRODUCTION_AUTOSCALING_TARGET_INVOCATIONS: p.ProductionAutoScalingTargetInvocations,
        STAGING_ALARM_NAME: iff('FollowAlarmOnStaging', this.modelQualityAlarm.alarmName, ''),
        STAGING_ALARM_METRIC: iff('FollowAlarmOnStaging', p.MetricName, ''),
        PRODUCTION_ALARM_NAME: iff('FollowAlarmOnProduction', this.modelQualityAlarm.alarmName, ''),
        PRODUCTION_ALARM_METRIC: iff('FollowAlarmOnProduction', p.MetricName, ''),
        DATA_CAPTURE_S3_URI: `s3://${bucketName}/${p.CapturePrefix}`,
        DATA_CAPTURE_SAMPLING_PERCENTAGE: p.CaptureSamplingPercentage,
        ...controlBusEnv,
        CATALOGUE_S3_URI: p.CatalogueS3Uri,
      },
      statements: [
        listPackages,
        stmt('ReadAndPromotePackages', ['sagemaker:DescribeModelPackage', 'sagemaker:UpdateModelPackage'], [packages]),
        stmt('CreateModels', ['sagemaker:CreateModel'], [models]),
        stmt('CreateEndpointConfigs', ['sagemaker:CreateEndpointConfig'], [
          sagemaker(`endpoint-config/${p.StagingEndpointName}-*`),
          prodOnly(sagemaker(`endpoint-config/${p.ProductionEndpointName}-*`)),
        ]),
        stmt('ConvergeEndpoints', ['sagemaker:DescribeEndpoint', 'sagemaker:CreateEndpoint', 'sagemaker:UpdateEndpoint'], [
          sagemaker(`endpoint/${p.StagingEndpointName}`),
          sagemaker(`endpoint-config/${p.StagingEndpointName}-*`),
          prodOnly(sagemaker(`endpoint/${p.ProductionEndpointName}`)),
          prodOnly(sagemaker(`endpoint-config/${p.ProductionEndpointName}-*`)),
        ]),
        stmt('PassModelRole', ['iam:PassRole'], [p.SageMakerExecutionRoleArn],
          { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } }),
        readBaselines(),
        publish(['Model Deployed', 'Model Deployment Skipped', 'Deployment Failed', 'Deployment Rolled Back']),
      ],
      conditionalStatements: {
        HasCatalogue: [readCatalogue()],
        FollowAlarm: [stmt('AlarmFollowsModel', ['cloudwatch:DescribeAlarms', 'cloudwatch:PutMetricAlarm'],
          [this.modelQualityAlarm.alarmArn])],
        // SageMaker reads the rollback alarms with the caller's rights; DescribeAlarms only reads.
        HasRollbackAlarms: [stmt('RollbackAlarms', ['cloudwatch:DescribeAlarms'], [arn('cloudwatch', 'alarm:*')])],
        HasProductionAutoScaling: [
          stmt('ScaleProductionVariant', [
            'application-autoscaling:RegisterScalableTarget', 'application-autoscaling:DeregisterScalableTarget',
            'application-autoscaling:PutScalingPolicy',
          ], [arn('application-autoscaling', 'scalable-target/*')],
          { StringEquals: { 'application-autoscaling:service-namespace': 'sagemaker' } }),
          stmt('AutoScalingChecksTheVariant', ['sagemaker:DescribeEndpoint', 'sagemaker:UpdateEndpointWeightsAndCapacities'],
            [sagemaker(`endpoint/${p.ProductionEndpointName}`)]),
          stmt('AutoScalingServiceLinkedRole', ['iam:CreateServiceLinkedRole'],
            [`arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint`],
            { StringLike: { 'iam:AWSServiceName': 'sagemaker.application-autoscaling.amazonaws.com' } }),
        ],
      },
    });

    const retrainOnAlarm = mkFunction('RetrainOnAlarmFunction', {
      binary: 'retrain-on-alarm', logName: 'retrain-on-alarm',
      description: 'driftloop retrain-on-alarm - starts the model-build pipeline once per reason to retrain.',
      memorySize: 128, timeout: 60, dlq: q.retrainOnAlarm, ...asyncRetries,
      environment: {
        PIPELINE_NAME: p.PipelineName,
        COOLDOWN: p.Cooldown,
        SCHEDULE_PERIOD: p.RetrainSchedulePeriod,
        MAX_TRIGGER_AGE: p.MaxTriggerAge,
        ALARM_PIPELINES: p.AlarmPipelines,
        PIPELINE_PARAMETERS: p.PipelineParameters,
        CONTEXT_PARAMETERS: p.ContextParameters,
        ...controlBusEnv,
        METRICS_NAMESPACE: p.LoopMetricsNamespace,
        LEASE_S3_URI: `s3://${bucketName}/driftloop-state/retrain-leases/`,
        RECHECK_RULE: `${loopName}-retrain-recheck`,
        RECHECK_ALARM_PREFIX: alarmPrefix,
        CATALOGUE_S3_URI: p.CatalogueS3Uri,
      },
      conditionalStatements: { HasCatalogue: [readCatalogue()] },
      statements: [
        stmt('PipelineLeases', ['s3:GetObject', 's3:PutObject'], [`${bucketArn}/driftloop-state/retrain-leases/*`]),
        // Without it a missing lease answers 403 instead of 404 (NoSuchKey).
        stmt('ListPipelineLeases', ['s3:ListBucket'], [bucketArn],
          { StringLike: { 's3:prefix': 'driftloop-state/retrain-leases/*' } }),
        stmt('RecheckAlarms', ['cloudwatch:DescribeAlarms'], [arn('cloudwatch', `alarm:${alarmPrefix}*`)]),
        stmt('StartPipeline', ['sagemaker:StartPipelineExecution', 'sagemaker:ListPipelineExecutions'], [
          sagemaker(`pipeline/${p.PipelineName}`),
          iff('HasAlarmPipelines', sagemaker(`pipeline/${p.AlarmPipelinesPattern}`), NONE),
        ]),
        // PutMetricData has no resource type; the namespace condition is its scope.
        stmt('RetrainCounts', ['cloudwatch:PutMetricData'], ['*'],
          { StringEquals: { 'cloudwatch:namespace': p.LoopMetricsNamespace } }),
        publish(['Retraining Started', 'Retraining Skipped']),
      ],
    });

    const monitoringEnv = {
      INFERENCE_ATTRIBUTE: p.InferenceAttribute,
      PROBABILITY_ATTRIBUTE: p.ProbabilityAttribute,
      PROBABILITY_THRESHOLD: p.ProbabilityThreshold,
      FORECAST_QUANTILES: iff('IsForecast', p.ForecastQuantiles, NONE),
      FORECAST_SEASONALITY: iff('IsForecast', p.ForecastSeasonality, NONE),
      DATA_QUALITY: p.DataQuality,
      MODEL_PACKAGE_GROUP_NAME: p.ModelPackageGroupName,
      METRICS_NAMESPACE: p.MetricsNamespace,
      MONITORING_SCHEDULE_NAME: p.MonitoringScheduleName,
      ...controlBusEnv,
      WINDOW_MINUTES: p.WindowMinutes,
      WINDOW_OFFSET_MINUTES: p.WindowOffsetMinutes,
      GROUND_TRUTH_DELAY_MINUTES: p.GroundTruthDelayMinutes,
      FEATURE_NAMES: iff('HasFeatureNames', p.FeatureNames, NONE),
      PREDICTION_BASELINE_S3_URI: iff('HasPredictionBaselineKey', `s3://${p.ModelArtifactsBucketName}/${p.PredictionBaselineKey}`, NONE),
      PREDICTION_FEATURE: iff('HasPredictionFeature', p.PredictionFeature, NONE),
      VARIANT_NAME: 'AllTraffic',
      CAPTURE_S3_URI: `s3://${bucketName}/${p.CapturePrefix}`,
      REPORT_S3_URI: `s3://${bucketName}/${p.ReportPrefix}`,
    };
    const monitoringStatements = (groundTruth: { condition: string; prefix: Str }, batchInDataBucket: boolean) => [
      stmt('ListWindowObjects', ['s3:ListBucket'], [bucketArn], {
        StringLike: {
          's3:prefix': [
            `${p.CapturePrefix}/*`,
            iff(groundTruth.condition, `${groundTruth.prefix}/*`, NONE),
            `${p.ReportPrefix}/*`,
            ...(batchInDataBucket ? [iff('BatchOutputInDataBucket', `${p.BatchOutputPrefix}/*`, NONE)] : []),
          ],
        },
      }),
      stmt('ReadCaptureAndGroundTruth', ['s3:GetObject'], [
        `${bucketArn}/${p.CapturePrefix}/*`,
        iff(groundTruth.condition, `${bucketArn}/${groundTruth.prefix}/*`, NONE),
        `${bucketArn}/${p.ReportPrefix}/*`,
        ...(batchInDataBucket ? [iff('BatchOutputInDataBucket', `${bucketArn}/${p.BatchOutputPrefix}/*`, NONE)] : []),
      ]),
      stmt('WriteReports', ['s3:PutObject'], [`${bucketArn}/${p.ReportPrefix}/*`]),
      readBaselines(),
      listPackages,
      stmt('DescribePackages', ['sagemaker:DescribeModelPackage'], [packages]),
      publish(['Model Monitoring Completed', 'Model Monitoring Violations']),
    ];
    const describeServing = (endpoint: Str) => stmt('DescribeServing',
      ['sagemaker:DescribeEndpoint', 'sagemaker:DescribeEndpointConfig', 'sagemaker:DescribeModel'],
      [sagemaker(`endpoint/${endpoint}`), sagemaker(`endpoint-config/${endpoint}-*`), models]);
    const putMetrics = (namespaces: unknown) => stmt('PutQualityMetrics', ['cloudwatch:PutMetricData'], ['*'],
      { StringEquals: { 'cloudwatch:namespace': namespaces } });

    const scaleOutName = `${loopName}-scale-out`;
    const scaleOutArn = arn('states', `stateMachine:${scaleOutName}`);
    const customMetrics = mkFunction('CustomMetricsFunction', {
      binary: 'custom-metrics', logName: 'custom-metrics',
      description: 'driftloop custom-metrics - joins capture with ground truth, writes reports, puts metrics, announces violations.',
      memorySize: 1024, timeout: 600, dlq: q.customMetrics, ...asyncRetries,
      environment: {
        ...monitoringEnv,
        CAPTURE_MODE: p.CaptureMode,
        BATCH_OUTPUT_FORMAT: iff('IsBatchTransform', p.BatchOutputFormat, NONE),
        GROUND_TRUTH_S3_URI: iff('HasProblemType', `s3://${bucketName}/${p.GroundTruthPrefix}`, NONE),
        ENDPOINT_NAME: iff('IsBatchTransform', NONE, monitoredEndpoint),
        PROBLEM_TYPE: p.ProblemType,
        // The state machine's ARN from its fixed name (a reference would be a cycle: it invokes this function).
        SCALE_OUT_STATE_MACHINE_ARN: scaleOutArn,
        SCALE_OUT_BYTES: p.ScaleOutBytes,
        SCALE_OUT_SLICE_BYTES: p.ScaleOutSliceBytes,
        // The catalogue (issue 15): the schedule fans out over every monitored endpoint of every model.
        CATALOGUE_S3_URI: p.CatalogueS3Uri,
      },
      statements: [
        ...monitoringStatements({ condition: 'HasProblemType', prefix: p.GroundTruthPrefix }, true),
        stmt('StartScaleOut', ['states:StartExecution'], [scaleOutArn]),
        putMetrics(Fn.conditionIf(c.HasCustomNamespace.logicalId, [p.MetricsNamespace], Fn.conditionIf(c.IsBatchTransform.logicalId,
          ['aws/sagemaker/ModelMonitoring/model-metrics', 'aws/sagemaker/ModelMonitoring/data-metrics'],
          ['aws/sagemaker/Endpoints/model-metrics', 'aws/sagemaker/Endpoints/data-metrics']))),
      ],
      conditionalStatements: {
        // Batch transform: the output files the capture manifests list, in the jobs' own bucket.
        BatchOutputElsewhere: [
          stmt('ListBatchOutput', ['s3:ListBucket'], [`arn:${Aws.PARTITION}:s3:::${p.BatchOutputBucketName}`],
            { StringLike: { 's3:prefix': [`${p.BatchOutputPrefix}/*`] } }),
          stmt('ReadBatchOutput', ['s3:GetObject'], [`arn:${Aws.PARTITION}:s3:::${p.BatchOutputBucketName}/${p.BatchOutputPrefix}/*`]),
        ],
        // The package the endpoint serves (endpoint -> endpoint config -> model -> ModelPackageName).
        IsRealtimeCapture: [describeServing(monitoredEndpoint)],
        HasCatalogue: [readCatalogue()],
      },
    });

    // The staging endpoint, monitored against the package it serves: the same code, its own
    // ENDPOINT_NAME and, when StagingGroundTruthPrefix is set, its own labels.
    const customMetricsStaging = mkFunction('CustomMetricsStagingFunction', {
      binary: 'custom-metrics', logName: 'custom-metrics-staging', condition: 'MonitorsStagingToo',
      description: 'driftloop custom-metrics for the staging endpoint - data quality (and model quality with staging labels) against the package staging serves.',
      memorySize: 1024, timeout: 600, dlq: q.customMetricsStaging, ...asyncRetries,
      environment: {
        ...monitoringEnv,
        CAPTURE_MODE: 'realtime',
        GROUND_TRUTH_S3_URI: iff('HasStagingGroundTruth', `s3://${bucketName}/${p.StagingGroundTruthPrefix}`, NONE),
        ENDPOINT_NAME: p.StagingEndpointName,
        PROBLEM_TYPE: iff('HasStagingGroundTruth', p.ProblemType, ''),
      },
      statements: [
        ...monitoringStatements({ condition: 'HasStagingGroundTruth', prefix: p.StagingGroundTruthPrefix }, false),
        describeServing(p.StagingEndpointName),
        putMetrics(Fn.conditionIf(c.HasCustomNamespace.logicalId, [p.MetricsNamespace],
          ['aws/sagemaker/Endpoints/model-metrics', 'aws/sagemaker/Endpoints/data-metrics'])),
      ],
    });
    this.functions = { getApprovedModel, deployOnApproval, retrainOnAlarm, customMetrics, customMetricsStaging };

    // ------------------------------------------------------------------ scale-out (docs/scale-out.md)
    // custom-metrics writes a window's slices and plan under {report folder}/scaleout/{runId}/ and
    // starts this machine; the Distributed Map runs one worker per slice, the reduce step merges and
    // publishes the window once. A failed item (after its retries) fails the run.
    const scaleOutLogs = new logs.LogGroup(this, 'ScaleOutLogGroup', {
      logGroupName: `/driftloop/${loopName}/scale-out`,
      retention: num('LogRetentionDays') as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    (scaleOutLogs.node.defaultChild as logs.CfnLogGroup).addMetadata('checkov', { skip: LOG_SKIPS });
    this.logGroups.ScaleOutLogGroup = scaleOutLogs;
    const scaleOutRole = new iam.Role(this, 'ScaleOutStateMachineRole', {
      description: 'driftloop scale-out state machine - lists a window\'s slices, invokes custom-metrics, runs its Map\'s child executions.',
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } } }),
      inlinePolicies: {
        'scale-out': new iam.PolicyDocument({
          statements: [
            stmt('InvokeCustomMetrics', ['lambda:InvokeFunction'], [customMetrics.functionArn, `${customMetrics.functionArn}:*`]),
            // The ItemReader lists the window's slices under the report prefix.
            stmt('ListSlices', ['s3:ListBucket'], [bucketArn], { StringLike: { 's3:prefix': [`${p.ReportPrefix}/*`] } }),
            // A Distributed Map runs its items as child executions of this state machine.
            stmt('RunMapChildren', ['states:StartExecution'], [scaleOutArn]),
            stmt('ManageMapChildren', ['states:DescribeExecution', 'states:StopExecution'], [arn('states', `execution:${scaleOutName}/*`)]),
            // Log delivery and X-Ray have no resource types.
            stmt('DeliverLogs', ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery',
              'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'], ['*']),
            stmt('Tracing', ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'], ['*']),
          ],
        }),
      },
    });
    this.scaleOut = new sfn.StateMachine(this, 'ScaleOutStateMachine', {
      stateMachineName: scaleOutName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(scaleOutDefinition()),
      definitionSubstitutions: { CustomMetricsArn: customMetrics.functionArn, MaxConcurrency: p.ScaleOutMaxConcurrency },
      // The role as a reference: its policy above is the whole grant (the L2 would add its own
      // log-delivery and X-Ray statements to a policy of its own).
      role: iam.Role.fromRoleArn(this, 'ScaleOutStateMachineRoleRef', scaleOutRole.roleArn, { mutable: false }),
      logs: { destination: scaleOutLogs, level: sfn.LogLevel.ERROR, includeExecutionData: false },
      tracingEnabled: true,
    });

    // ------------------------------------------------------------------ notifications
    // One topic for people, encrypted with its own key: EventBridge and CloudWatch cannot publish
    // to a topic encrypted with the AWS managed key (aws/sns), whose policy cannot be changed.
    // Named: the key policy names the topic's ARN (a reference would be a cycle).
    const topicName = `${loopName}-notifications`;
    this.notificationKey = new kms.Key(this, 'NotificationKey', {
      description: `driftloop ${loopName} - encrypts the notifications topic.`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // The whole key policy, as written (the L2 would add its default administrator statements).
    (this.notificationKey.node.defaultChild as kms.CfnKey).keyPolicy = new iam.PolicyDocument({
      statements: [
        // The account administers the key through IAM (the default key policy).
        new iam.PolicyStatement({ sid: 'AccountAdministers', principals: [new iam.AccountRootPrincipal()], actions: ['kms:*'], resources: ['*'] }),
        // The publishers (the notification rules, the alarms) encrypt for this topic only, from this account only.
        new iam.PolicyStatement({
          sid: 'RulesAndAlarmsEncryptForTheTopic',
          principals: [new iam.ServicePrincipal('events.amazonaws.com'), new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:GenerateDataKey*', 'kms:Decrypt'], resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID, 'kms:EncryptionContext:aws:sns:topicArn': arn('sns', topicName) } },
        }),
      ],
    });
    const keyAlias = new kms.Alias(this, 'NotificationKeyAlias', { aliasName: `alias/driftloop/${loopName}/notifications`, targetKey: this.notificationKey });
    (keyAlias.node.defaultChild as kms.CfnAlias).targetKeyId = this.notificationKey.keyId;
    this.topic = new sns.Topic(this, 'NotificationTopic', { topicName, displayName: 'driftloop', masterKey: this.notificationKey });
    (this.topic.node.defaultChild as sns.CfnTopic).kmsMasterKeyId = this.notificationKey.keyId;
    const subscription = new sns.Subscription(this, 'NotificationEmailSubscription', {
      topic: this.topic, protocol: sns.SubscriptionProtocol.EMAIL, endpoint: p.NotificationEmail,
    });
    onCondition(subscription, c.HasNotificationEmail);
    // The rules publish through a reference, so the L2 target adds no unconditioned topic policy
    // statement of its own (the topic policy below names the rules).
    const topicRef = sns.Topic.fromTopicArn(this, 'NotificationTopicRef', this.topic.topicArn);

    // ------------------------------------------------------------------ rules
    // Each target: EventBridge's retry policy, then the function's dead-letter queue. The queue is
    // given to the target as a reference so the L2 does not add one policy statement per rule
    // (unconditionally, also for rules that exist under a condition): each queue has one policy
    // naming its rules, conditional ones under their conditions.
    const dlqRef = (qu: sqs.Queue) => sqs.Queue.fromQueueAttributes(this, `${qu.node.id}Ref`, { queueArn: qu.queueArn, queueUrl: qu.queueUrl });
    const dlqRefs = new Map<sqs.Queue, sqs.IQueue>();
    const rulesByQueue = new Map<sqs.Queue, string[]>();
    const rule = (rid: string, o: {
      description: string; fn?: lambda.IFunction; topic?: sns.ITopic; targetId: string; dlq: sqs.Queue; maxEventAge?: Duration;
      pattern?: events.EventPattern; schedule?: Str; bus?: events.IEventBus; input?: events.RuleTargetInput; condition?: string;
    }) => {
      if (!dlqRefs.has(o.dlq)) dlqRefs.set(o.dlq, dlqRef(o.dlq));
      rulesByQueue.set(o.dlq, [...(rulesByQueue.get(o.dlq) ?? []), rid]);
      const r = new events.Rule(this, rid, {
        description: o.description,
        eventBus: o.bus,
        eventPattern: o.pattern,
        schedule: o.schedule === undefined ? undefined : events.Schedule.expression(o.schedule),
        enabled: true,
      });
      const retries = { retryAttempts: 185, maxEventAge: o.maxEventAge ?? Duration.hours(24), deadLetterQueue: dlqRefs.get(o.dlq) };
      r.addTarget(o.fn ? new targets.LambdaFunction(o.fn, { ...retries, event: o.input })
        : new targets.SnsTopic(o.topic!, { ...retries, message: o.input }));
      // A readable target Id (the function's name, as in template.yaml) instead of Target0.
      (r.node.defaultChild as events.CfnRule).addPropertyOverride('Targets.0.Id', o.targetId);
      if (o.condition) onCondition(r, c[o.condition]); // the rule and its invoke permission
      this.rules[rid] = r;
      return r;
    };
    const control = new InputTemplate(CONTROL_ENVELOPE);
    const deploy = { fn: deployOnApproval, targetId: 'deploy-on-approval', dlq: q.deployOnApproval };
    const retrain = { fn: retrainOnAlarm, targetId: 'retrain-on-alarm', dlq: q.retrainOnAlarm };
    const metrics = { fn: customMetrics, targetId: 'custom-metrics', dlq: q.customMetrics };
    const metricsStaging = { fn: customMetricsStaging, targetId: 'custom-metrics-staging', dlq: q.customMetricsStaging };
    rule('DeployOnApprovalPackageRule', {
      ...deploy, description: 'Approval or rejection of a package of the group -> deploy-on-approval (converge, roll back).',
      pattern: {
        source: ['aws.sagemaker'], detailType: ['SageMaker Model Package State Change'],
        detail: { ModelPackageGroupName: [p.ModelPackageGroupName], ModelApprovalStatus: ['Approved', 'Rejected'] },
      },
    });
    rule('DeployOnApprovalEndpointRule', {
      ...deploy, description: 'A managed endpoint back IN_SERVICE -> deploy-on-approval (a deployment refused while the endpoint was busy happens now).',
      pattern: {
        source: ['aws.sagemaker'], detailType: ['SageMaker Endpoint State Change'],
        detail: {
          EndpointName: Fn.conditionIf(c.HasProduction.logicalId, [p.StagingEndpointName, p.ProductionEndpointName], [p.StagingEndpointName]),
          EndpointStatus: ['IN_SERVICE'],
        },
      },
    });
    rule('DeployOnApprovalPromotionRule', {
      ...deploy, bus: this.controlBus, input: control,
      description: 'driftloop Model Promotion Requested (staging -> production) for the group -> deploy-on-approval.',
      pattern: { source: ['driftloop'], detailType: ['Model Promotion Requested'], detail: { ModelPackageGroupName: [p.ModelPackageGroupName] } },
    });
    // The stack's name and a dot (which stack names cannot contain) lead the prefix: no other stack's alarm matches.
    rule('RetrainOnAlarmRule', {
      ...retrain, description: 'An alarm named <stack name>.<AlarmNamePrefix>... entering ALARM -> retrain-on-alarm.',
      pattern: {
        source: ['aws.cloudwatch'], detailType: ['CloudWatch Alarm State Change'],
        detail: { alarmName: events.Match.prefix(alarmPrefix), state: { value: ['ALARM'] } },
      },
    });
    rule('RetrainRequestRule', {
      ...retrain, bus: this.controlBus, input: control, description: 'driftloop Retrain Requested (on demand) -> retrain-on-alarm.',
      pattern: { source: ['driftloop'], detailType: ['Retrain Requested'] },
    });
    rule('RetrainScheduleRule', {
      ...retrain, schedule: p.RetrainSchedule, condition: 'HasRetrainSchedule',
      description: 'Time-based retraining -> retrain-on-alarm (skipped after a recent drift retrain).',
    });
    // Alarms a skip deferred (busy, cooldown) retrain once it ends: a Scheduled Event naming
    // RECHECK_RULE, <loop name>-retrain-recheck (the rule's own name would be a physical name or a cycle).
    rule('RetrainRecheckRule', {
      ...retrain, schedule: 'rate(1 hour)',
      description: 'Hourly recheck of <stack name>.<AlarmNamePrefix>... alarms still in ALARM -> retrain-on-alarm (retrains once per transition a skip deferred).',
      input: new InputTemplate(
        `{"version": "0", "id": "<id>", "detail-type": "Scheduled Event", "source": "aws.events", "account": "<account>", "time": "<time>", "region": "<region>", "resources": ["arn:aws:events:<region>:<account>:rule/${loopName}-retrain-recheck"], "detail": {}}`,
        { id: '$.id', time: '$.time', account: '$.account', region: '$.region' }),
    });
    rule('CustomMetricsScheduleRule', {
      ...metrics, schedule: p.MetricsSchedule, maxEventAge: Duration.hours(1),
      description: 'Evaluate the last complete window -> custom-metrics.',
    });
    rule('CustomMetricsStagingScheduleRule', {
      ...metricsStaging, schedule: p.MetricsSchedule, maxEventAge: Duration.hours(1), condition: 'MonitorsStagingToo',
      description: 'Evaluate the staging endpoint\'s last complete window -> the staging custom-metrics.',
    });
    const groundTruth = (prefix: Str): events.EventPattern => ({
      source: ['aws.s3'], detailType: ['Object Created'],
      detail: { bucket: { name: [bucketName] }, object: { key: events.Match.prefix(`${prefix}/`) } },
    });
    rule('StagingGroundTruthRule', {
      ...metricsStaging, pattern: groundTruth(p.StagingGroundTruthPrefix), condition: 'HasStagingGroundTruth',
      description: 'Staging ground truth uploaded under StagingGroundTruthPrefix -> the staging custom-metrics recomputes the affected windows.',
    });
    rule('GroundTruthRule', {
      ...metrics, pattern: groundTruth(p.GroundTruthPrefix), condition: 'HasProblemType',
      description: 'Ground truth uploaded under GroundTruthPrefix -> custom-metrics recomputes the affected windows.',
    });
    rule('CustomMetricsRequestRule', {
      ...metrics, bus: this.controlBus, input: control,
      description: 'driftloop Model Monitoring Requested (an explicit window, a backfill) -> custom-metrics.',
      pattern: { source: ['driftloop'], detailType: ['Model Monitoring Requested'] },
    });

    // The loop's outcomes on EventBusName, one rule per message shape, each turned into one readable
    // line. Not notified: Model Monitoring Completed and Model Deployment Skipped (every run, every no-op).
    const notification = { topic: topicRef, targetId: 'notifications', dlq: q.notifications, bus: this.bus };
    const line = (template: string, paths: Record<string, string>) => new InputTemplate(`"driftloop: ${template}"`, paths);
    rule('NotifyViolationsRule', {
      ...notification, description: 'driftloop Model Monitoring Violations of this stack\'s monitoring schedule -> the notifications topic.',
      pattern: { source: ['driftloop'], detailType: ['Model Monitoring Violations'], detail: { monitoringScheduleName: [p.MonitoringScheduleName] } },
      input: line('<count> constraint violation(s) in the window <start> to <end> of monitoring schedule <schedule> (<status>). Report: <report>', {
        count: '$.detail.violationCount', schedule: '$.detail.monitoringScheduleName', start: '$.detail.window.start',
        end: '$.detail.window.end', status: '$.detail.status', report: '$.detail.reports.constraintViolations',
      }),
    });
    rule('NotifyRetrainingStartedRule', {
      ...notification, description: 'driftloop Retraining Started -> the notifications topic.',
      pattern: { source: ['driftloop'], detailType: ['Retraining Started'] },
      input: line('retraining started - pipeline <pipeline>, execution <execution> (trigger: <trigger>).', {
        pipeline: '$.detail.pipelineName', execution: '$.detail.pipelineExecutionArn', trigger: '$.detail.trigger.kind',
      }),
    });
    rule('NotifyRetrainingSkippedRule', {
      ...notification, description: 'driftloop Retraining Skipped (cooldown, busy, stale trigger, ...) -> the notifications topic.',
      pattern: { source: ['driftloop'], detailType: ['Retraining Skipped'] },
      input: line('retraining skipped - pipeline <pipeline>: <code> - <message> (trigger: <trigger>).', {
        pipeline: '$.detail.pipelineName', code: '$.detail.skip.code', message: '$.detail.skip.message', trigger: '$.detail.trigger.kind',
      }),
    });
    rule('NotifyModelDeployedRule', {
      ...notification, description: 'driftloop Model Deployed of this stack\'s group -> the notifications topic.',
      pattern: { source: ['driftloop'], detailType: ['Model Deployed'], detail: { modelPackageGroupName: [p.ModelPackageGroupName] } },
      input: line('<stage> endpoint <endpoint> <action> - now serving version <version> of <group> (<package>).', {
        stage: '$.detail.stage', endpoint: '$.detail.endpoint', action: '$.detail.action', package: '$.detail.packageArn',
        version: '$.detail.packageVersion', group: '$.detail.modelPackageGroupName',
      }),
    });
    rule('NotifyDeploymentFailedRule', {
      ...notification, description: 'driftloop Deployment Failed / Deployment Rolled Back of this stack\'s group -> the notifications topic.',
      pattern: {
        source: ['driftloop'], detailType: ['Deployment Failed', 'Deployment Rolled Back'],
        detail: { modelPackageGroupName: [p.ModelPackageGroupName] },
      },
      input: line('<outcome> - <stage> endpoint <endpoint>, version <version> of <group> - reason: <reason> - to retry: <retry>', {
        outcome: '$.detail-type', stage: '$.detail.stage', endpoint: '$.detail.endpoint', version: '$.detail.packageVersion',
        group: '$.detail.modelPackageGroupName', reason: '$.detail.reason', retry: '$.detail.retry',
      }),
    });
    const notificationRules = ['NotifyViolationsRule', 'NotifyRetrainingStartedRule', 'NotifyRetrainingSkippedRule',
      'NotifyModelDeployedRule', 'NotifyDeploymentFailedRule'];

    // ------------------------------------------------------------------ dead-letter queue policies
    // A rule's ARN in a policy: under the rule's condition, unless the policy has that condition itself.
    const ruleArn = (rid: string, policyCondition?: CfnCondition) => {
      const r = this.rules[rid];
      const cnd = (r.node.defaultChild as events.CfnRule).cfnOptions.condition;
      return cnd && cnd !== policyCondition ? Fn.conditionIf(cnd.logicalId, r.ruleArn, NONE).toString() : r.ruleArn;
    };
    const deadLetterPolicy = (qu: sqs.Queue, ruleIds: string[]) => {
      const policy = new sqs.QueuePolicy(this, `${qu.node.id}Policy`, { queues: [qu] });
      policy.document.addStatements(new iam.PolicyStatement({
        sid: 'EventBridgeDeadLetters', principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'], resources: [qu.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': ruleIds.map((rid) => ruleArn(rid, queueConditions.get(qu))) } },
      }));
      const qc = queueConditions.get(qu);
      if (qc) onCondition(policy, qc);
    };
    for (const [qu, ruleIds] of rulesByQueue) deadLetterPolicy(qu, ruleIds);

    // ------------------------------------------------------------------ operational alarms
    // Into the topic. Named <loop name>-ops-... (no dot): RetrainOnAlarmRule and the recheck take
    // alarms named <loop name>.<AlarmNamePrefix>... only, so an operational alarm never starts retraining.
    const notify = new cwActions.SnsAction(this.topic);
    const opsAlarm = (aid: string, o: { name: string; description: string; metric: cloudwatch.IMetric; threshold?: number; condition?: string }) => {
      const a = new cloudwatch.Alarm(this, aid, {
        alarmName: `${loopName}-ops-${o.name}`, alarmDescription: o.description, metric: o.metric,
        threshold: o.threshold ?? 0, evaluationPeriods: 1, datapointsToAlarm: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(notify);
      if (o.condition) onCondition(a, c[o.condition]);
      this.operationalAlarms[aid] = a;
      return a;
    };
    const fiveMinutes = Duration.minutes(5);
    const fnAlarms: Array<[string, string, lambda.Function, string, string | undefined]> = [
      ['GetApprovedModel', 'get-approved-model', getApprovedModel, 'GetApprovedModelDLQ', undefined],
      ['DeployOnApproval', 'deploy-on-approval', deployOnApproval, 'DeployOnApprovalDLQ', undefined],
      ['RetrainOnAlarm', 'retrain-on-alarm', retrainOnAlarm, 'RetrainOnAlarmDLQ', undefined],
      ['CustomMetrics', 'custom-metrics', customMetrics, 'CustomMetricsDLQ', undefined],
      ['CustomMetricsStaging', 'custom-metrics-staging', customMetricsStaging, 'CustomMetricsStagingDLQ', 'MonitorsStagingToo'],
    ];
    const durationAlarm = (key: string, name: string, fn: lambda.Function, condition?: string) => opsAlarm(`${key}DurationAlarm`, {
      name: `${name}-duration`,
      description: `driftloop ${name} - an invocation ran longer than 80% of the function's 600 s timeout (windows too large for the memory size, or slow S3).`,
      metric: fn.metricDuration({ statistic: 'Maximum', period: fiveMinutes }), threshold: 0.8 * 600 * 1000, condition,
    });
    for (const [key, name, fn, dlqName, condition] of fnAlarms) {
      opsAlarm(`${key}ErrorsAlarm`, {
        name: `${name}-errors`,
        description: `driftloop ${name} - invocations failed in the last 5 minutes (async failures are retried, then recorded in ${dlqName} with their errorType).`,
        metric: fn.metricErrors({ statistic: 'Sum', period: fiveMinutes }), condition,
      });
      opsAlarm(`${key}ThrottlesAlarm`, {
        name: `${name}-throttles`,
        description: `driftloop ${name} - invocations throttled in the last 5 minutes (account or reserved concurrency exhausted).`,
        metric: fn.metricThrottles({ statistic: 'Sum', period: fiveMinutes }), condition,
      });
      if (key === 'CustomMetrics') durationAlarm(key, name, fn);
      if (key === 'CustomMetricsStaging') durationAlarm(key, name, fn, condition);
    }
    const queueAlarms: Array<[string, sqs.Queue, string, string | undefined]> = [
      ['GetApprovedModelDLQ', q.getApprovedModel, 'get-approved-model', undefined],
      ['DeployOnApprovalDLQ', q.deployOnApproval, 'deploy-on-approval', undefined],
      ['RetrainOnAlarmDLQ', q.retrainOnAlarm, 'retrain-on-alarm', undefined],
      ['CustomMetricsDLQ', q.customMetrics, 'custom-metrics', undefined],
      ['CustomMetricsStagingDLQ', q.customMetricsStaging, 'custom-metrics-staging', 'MonitorsStagingToo'],
      ['NotificationDLQ', q.notifications, 'notification', undefined],
    ];
    for (const [qid, qu, name, condition] of queueAlarms) {
      opsAlarm(`${qid}DepthAlarm`, {
        name: `${name}-dead-letters`,
        description: qid === 'NotificationDLQ'
          ? 'driftloop NotificationDLQ holds notifications EventBridge could not deliver to the topic; inspect and redrive (infra/README.md, Operations).'
          : `driftloop ${qid} holds events ${name} could not take (failed invocations with their errorType, undeliverable events); inspect and redrive (infra/README.md, Operations).`,
        metric: qu.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: fiveMinutes }), condition,
      });
    }

    // The topic's policy: the notification rules and the operational alarms of this loop only.
    const conditionalArn = (construct: IConstruct, value: string) => {
      const cnd = (construct.node.defaultChild as CfnResource).cfnOptions.condition;
      return cnd ? Fn.conditionIf(cnd.logicalId, value, NONE).toString() : value;
    };
    const topicPolicy = new sns.TopicPolicy(this, 'NotificationTopicPolicy', { topics: [this.topic] });
    topicPolicy.document.addStatements(
      new iam.PolicyStatement({
        sid: 'LoopOutcomeRulesPublish', principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sns:Publish'], resources: [this.topic.topicArn],
        conditions: { ArnEquals: { 'aws:SourceArn': notificationRules.map((rid) => ruleArn(rid)) } },
      }),
      new iam.PolicyStatement({
        sid: 'OperationalAlarmsPublish', principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'], resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnEquals: { 'aws:SourceArn': Object.values(this.operationalAlarms).map((a) => conditionalArn(a, a.alarmArn)) },
        },
      }),
    );

    // ------------------------------------------------------------------ dashboard
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: `${loopName}-driftloop` });
    (this.dashboard.node.defaultChild as cloudwatch.CfnDashboard).dashboardBody = dashboardBody({
      p, iff, c, monitoredEndpoint, modelNamespace, dataNamespace,
      qualityAlarmArn: this.modelQualityAlarm.alarmArn, driftAlarmArns: this.driftAlarms.map((a) => a.alarmArn), feature,
      functions: this.functions, queues: q, operationalAlarms: this.operationalAlarms,
    });

    if (props.samLogicalIds) useSamLogicalIds(this);
  }
}

/** The scale-out state machine's definition (Amazon States Language; ${MaxConcurrency}, ${CustomMetricsArn} substituted). */
function scaleOutDefinition(): string {
  const retry = [{
    ErrorEquals: ['Lambda.TooManyRequestsException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException',
      'Lambda.ClientExecutionTimeoutException', 'Retryable.Throttled', 'Retryable.ServerError', 'Retryable.Transport', 'Retryable.Busy'],
    IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL',
  }];
  const definition = {
    Comment: 'driftloop scale-out: a window\'s slices computed by custom-metrics workers, merged once (docs/scale-out.md)',
    TimeoutSeconds: 21600,
    StartAt: 'Workers',
    States: {
      Workers: {
        Type: 'Map',
        Label: 'Workers',
        ItemReader: { Resource: 'arn:aws:states:::s3:listObjectsV2', Parameters: { 'Bucket.$': '$.slices.bucket', 'Prefix.$': '$.slices.prefix' } },
        ItemSelector: { scaleOut: { mode: 'worker', 'plan.$': '$.plan', 'execution.$': '$$.Execution.Name', 'item.$': '$$.Map.Item.Value' } },
        MaxConcurrency: '@MaxConcurrency@',
        ToleratedFailureCount: 0,
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: 'Worker',
          States: {
            Worker: {
              Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke',
              Parameters: { FunctionName: '${CustomMetricsArn}', 'Payload.$': '$' },
              OutputPath: '$.Payload', TimeoutSeconds: 900, Retry: retry, End: true,
            },
          },
        },
        ResultPath: null,
        Next: 'Reduce',
      },
      Reduce: {
        Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: { FunctionName: '${CustomMetricsArn}', Payload: { scaleOut: { mode: 'reduce', 'plan.$': '$.plan', 'execution.$': '$$.Execution.Name' } } },
        OutputPath: '$.Payload', TimeoutSeconds: 900, Retry: retry, End: true,
      },
    },
  };
  // MaxConcurrency is a number: its substitution goes in unquoted.
  return JSON.stringify(definition, null, 2).replace('"@MaxConcurrency@"', '${MaxConcurrency}');
}

/** The props with the template's defaults filled in and literals validated, as strings or tokens. */
function resolveParameters(props: DriftLoopProps): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, def] of Object.entries(PARAMETERS)) {
    const given = (props as unknown as Record<string, unknown>)[def.prop];
    if (def.type === 'CommaDelimitedList') {
      out[name] = given === undefined ? String(def.default ?? '') : Fn.join(',', given as string[]);
      continue;
    }
    const value = given === undefined ? def.default : given;
    if (value === undefined) throw new Error(`DriftLoop: ${def.prop} is required`);
    if (typeof value === 'number') {
      if (!Token.isUnresolved(value)) checkLiteral(name, def, value);
      out[name] = Tokenization.stringifyNumber(value);
    } else {
      if (!Token.isUnresolved(value)) checkLiteral(name, def, value as string);
      out[name] = value as string;
    }
  }
  return out;
}

function checkLiteral(name: string, def: (typeof PARAMETERS)[string], value: string | number) {
  const bad = (why: string) => { throw new Error(`DriftLoop: ${def.prop} = ${JSON.stringify(value)} ${why} (template parameter ${name})`); };
  if (def.allowedValues && !def.allowedValues.map(String).includes(String(value))) bad(`is not one of ${def.allowedValues.join(', ')}`);
  if (def.allowedPattern && !new RegExp(def.allowedPattern).test(String(value))) bad(`does not match ${def.allowedPattern}`);
  if (def.type === 'Number') {
    const n = Number(value);
    if (Number.isNaN(n)) bad('is not a number');
    if (def.minValue !== undefined && n < def.minValue) bad(`is below ${def.minValue}`);
    if (def.maxValue !== undefined && n > def.maxValue) bad(`is above ${def.maxValue}`);
  }
}

/** The Cargo workspace this package sits in (found by walking up from lib/ or dist/lib/). */
export function workspaceManifest(start: string = __dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'Cargo.toml');
    if (fs.existsSync(manifest) && /^\[workspace\]/m.test(fs.readFileSync(manifest, 'utf8'))) return manifest;
    if (path.dirname(dir) === dir) throw new Error(`no Cargo workspace above ${start}: pass manifestPath`);
  }
}

/** Puts every CloudFormation resource under `scope` under `condition`. */
function onCondition(scope: IConstruct, condition: CfnCondition) {
  for (const child of scope.node.findAll()) {
    if (child instanceof CfnResource) child.cfnOptions.condition = condition;
  }
}

/**
 * template.yaml's logical IDs: the construct id of each resource, with the SAM transform's names for
 * the resources it generates (<Fn>Role, <Fn>RolePolicy) and template.yaml's for the ones the L2s add
 * (<Fn minus Function>InvokeConfig, <Rule minus Rule>Permission).
 */
function useSamLogicalIds(loop: DriftLoop) {
  const seen = new Map<string, string>();
  for (const child of loop.node.findAll()) {
    if (!(child instanceof CfnElement) || child === (loop as unknown)) continue;
    const parts = child.node.path.slice(loop.node.path.length + 1).split('/').filter((x) => x !== 'Resource' && x !== 'Default');
    let id: string;
    if (parts.length === 2 && parts[1] === 'ServiceRole') id = `${parts[0]}Role`;
    else if (parts.length === 3 && parts[1] === 'ServiceRole' && parts[2] === 'DefaultPolicy') id = `${parts[0]}RolePolicy`;
    else if (parts.length === 2 && parts[1] === 'EventInvokeConfig') id = `${parts[0].replace(/Function$/, '')}InvokeConfig`;
    else if (parts.length === 2 && parts[1].startsWith('AllowEventRule')) id = `${parts[0].replace(/Rule$/, '')}Permission`;
    else id = parts.join('');
    const other = seen.get(id);
    if (other) throw new Error(`samLogicalIds: ${child.node.path} and ${other} both map to ${id}`);
    seen.set(id, child.node.path);
    child.overrideLogicalId(id);
  }
}

interface DashboardInputs {
  p: Record<string, string>;
  iff: (name: string, yes: unknown, no: unknown) => string;
  c: Record<string, CfnCondition>;
  monitoredEndpoint: string;
  modelNamespace: string;
  dataNamespace: string;
  qualityAlarmArn: string;
  driftAlarmArns: string[];
  feature: (i: number) => string;
  functions: DriftLoopFunctions;
  queues: DriftLoopQueues;
  operationalAlarms: Record<string, cloudwatch.Alarm>;
}

/**
 * The dashboard's body. Its first widgets exist only under conditions (the model-quality alarm's,
 * one per drift alarm), so it is assembled here as a CloudFormation string rather than from
 * cloudwatch widgets, whose JSON cannot hold an Fn::If.
 */
function dashboardBody(d: DashboardInputs): string {
  const { p, iff } = d;
  const dims = iff('IsBatchTransform', `"MonitoringSchedule", "${p.MonitoringScheduleName}"`,
    `"Endpoint", "${d.monitoredEndpoint}", "MonitoringSchedule", "${p.MonitoringScheduleName}"`);
  const counts = iff('HasProblemType', d.modelNamespace, d.dataNamespace);
  const region = Aws.REGION;
  const period = p.AlarmPeriodSeconds;
  const quality = iff('HasProblemType',
    `{"type": "metric", "width": 24, "height": 8, "properties": {"title": "${p.MetricName} vs the alarm's threshold (${p.AlarmComparisonOperator})", "region": "${region}", "view": "timeSeries", "stacked": false, "period": ${period}, "annotations": {"alarms": ["${d.qualityAlarmArn}"]}}},`,
    '');
  const drift = d.driftAlarmArns.map((alarmArn, i) => iff(`HasDriftAlarm${i + 1}`,
    `{"type": "metric", "width": 12, "height": 6, "properties": {"title": "feature_baseline_drift_${d.feature(i)} vs the alarm's threshold", "region": "${region}", "view": "timeSeries", "stacked": false, "period": ${period}, "annotations": {"alarms": ["${alarmArn}"]}}},`,
    '')).join('');
  const count = (metric: string, stat: string, label: string, extra = '') =>
    `["${counts}", "${metric}", ${dims}, {"stat": "${stat}", "label": "${label}"${extra}}]`;
  const loopNs = p.LoopMetricsNamespace;
  return `{"widgets": [${quality}${drift}`
    + `{"type": "metric", "width": 16, "height": 6, "properties": {"title": "Records per window (zeros, not gaps, when there is no data)", "region": "${region}", "view": "timeSeries", "stacked": false, "period": ${period}, "metrics": [`
    + [
      count('records_matched', 'Sum', 'matched'),
      count('records_unmatched_predictions', 'Sum', 'predictions without label'),
      count('records_unmatched_labels', 'Sum', 'labels without prediction'),
      count('records_malformed', 'Sum', 'malformed'),
      count('window_empty', 'Maximum', 'window empty', ', "yAxis": "right"'),
    ].join(', ')
    + ']}}, '
    + `{"type": "metric", "width": 8, "height": 6, "properties": {"title": "Retraining started / skipped", "region": "${region}", "view": "singleValue", "period": 604800, "metrics": [`
    + `["${loopNs}", "RetrainingStarted", "Pipeline", "${p.PipelineName}", {"stat": "Sum"}], `
    + `[{"expression": "SEARCH('{${loopNs},Pipeline,Reason} MetricName=\\"RetrainingSkipped\\"', 'Sum', 604800)", "label": "skipped", "id": "skipped"}]`
    + ']}}, '
    + `{"type": "metric", "width": 24, "height": 4, "properties": {"title": "Retraining started", "region": "${region}", "view": "timeSeries", "stacked": false, "period": ${period}, "metrics": [`
    + `["${loopNs}", "RetrainingStarted", "Pipeline", "${p.PipelineName}", {"stat": "Sum", "label": "retraining started"}]`
    + '], "yAxis": {"left": {"min": 0, "label": "retrains"}}}}, '
    + operationsRow(d)
    + ']}';
}

/** The operations row: function errors and throttles, dead letters waiting, custom-metrics duration, the alarms. */
function operationsRow(d: DashboardInputs): string {
  const { iff } = d;
  const region = Aws.REGION;
  const f = d.functions;
  const q = d.queues;
  const lambdaMetric = (metric: string, fn: lambda.IFunction, stat: string, label: string) =>
    `["AWS/Lambda", "${metric}", "FunctionName", "${fn.functionName}", {"stat": "${stat}", "label": "${label}"}]`;
  const queueMetric = (qu: sqs.IQueue, label: string) =>
    `["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${qu.queueName}", {"stat": "Maximum", "label": "${label}"}]`;
  const errorsAndThrottles = (fn: lambda.IFunction, name: string) =>
    `${lambdaMetric('Errors', fn, 'Sum', `${name} errors`)}, ${lambdaMetric('Throttles', fn, 'Sum', `${name} throttles`)}`;
  const staging = (text: string) => iff('MonitorsStagingToo', `, ${text}`, '');
  const alarms = Object.entries(d.operationalAlarms);
  const alarmArns = alarms.filter(([id]) => !id.startsWith('CustomMetricsStaging')).map(([, a]) => `"${a.alarmArn}"`).join(', ')
    + staging(alarms.filter(([id]) => id.startsWith('CustomMetricsStaging')).map(([, a]) => `"${a.alarmArn}"`).join(', '));
  return `{"type": "metric", "width": 12, "height": 6, "properties": {"title": "Operations - function errors and throttles (alarms above 0 per 5 minutes)", "region": "${region}", "view": "timeSeries", "stacked": false, "period": 300, "metrics": [`
    + [errorsAndThrottles(f.getApprovedModel, 'get-approved-model'), errorsAndThrottles(f.deployOnApproval, 'deploy-on-approval'),
      errorsAndThrottles(f.retrainOnAlarm, 'retrain-on-alarm'), errorsAndThrottles(f.customMetrics, 'custom-metrics')].join(', ')
    + staging(errorsAndThrottles(f.customMetricsStaging, 'custom-metrics-staging'))
    + '], "yAxis": {"left": {"min": 0}}}}, '
    + `{"type": "metric", "width": 6, "height": 6, "properties": {"title": "Operations - dead letters waiting", "region": "${region}", "view": "timeSeries", "stacked": false, "period": 300, "metrics": [`
    + [queueMetric(q.getApprovedModel, 'get-approved-model'), queueMetric(q.deployOnApproval, 'deploy-on-approval'),
      queueMetric(q.retrainOnAlarm, 'retrain-on-alarm'), queueMetric(q.customMetrics, 'custom-metrics'),
      queueMetric(q.notifications, 'notifications')].join(', ')
    + staging(queueMetric(q.customMetricsStaging, 'custom-metrics-staging'))
    + '], "yAxis": {"left": {"min": 0}}}}, '
    + `{"type": "metric", "width": 6, "height": 6, "properties": {"title": "Operations - custom-metrics duration, max (timeout 600 s, alarm above 480 s)", "region": "${region}", "view": "timeSeries", "stacked": false, "period": 300, "metrics": [`
    + lambdaMetric('Duration', f.customMetrics, 'Maximum', 'custom-metrics')
    + staging(lambdaMetric('Duration', f.customMetricsStaging, 'Maximum', 'custom-metrics-staging'))
    + '], "yAxis": {"left": {"min": 0, "max": 600000, "label": "ms"}}}}, '
    + `{"type": "alarm", "width": 24, "height": 3, "properties": {"title": "Operations - alarms (into the notifications topic)", "alarms": [${alarmArns}]}}`;
}
