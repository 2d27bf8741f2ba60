/**
 * The DriftLoop construct's own tests: aws-cdk-lib/assertions under node's test runner.
 *
 *   npm test            # tsc, then node --test dist/test (bundling skipped: no Rust build)
 *
 * (tests/python/test_infra_cdk.py runs these too, and compares the app's template with template.yaml.)
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { DriftLoop, DriftLoopProps, PARAMETERS } from '../lib/drift-loop';
import { DriftLoopStack } from '../lib/driftloop-stack';

const ROLE = 'arn:aws:iam::123456789012:role/sagemaker-execution';

function app(): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] }, analyticsReporting: false });
}

function synth(props: Partial<DriftLoopProps> = {}): { stack: Stack; loop: DriftLoop; t: Template } {
  const stack = new Stack(app(), 'Test');
  const loop = new DriftLoop(stack, 'Loop', { sageMakerExecutionRoleArn: ROLE, ...props });
  return { stack, loop, t: Template.fromStack(stack) };
}

function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as any);
}

describe('DriftLoop', () => {
  it('builds five arm64 Rust functions, six dead-letter queues, nineteen rules (two under HasCatalogue)', () => {
    const { t } = synth();
    t.resourceCountIs('AWS::Lambda::Function', 5);
    t.resourceCountIs('AWS::SQS::Queue', 6);
    t.resourceCountIs('AWS::Events::Rule', 19); // the catalogue's reconcile rules exist under HasCatalogue
    t.resourceCountIs('AWS::CloudWatch::Alarm', 6 + 18); // model quality, 5 drift slots; operational (errors, throttles, durations, queue depths)
    t.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023', Architectures: ['arm64'], Handler: 'bootstrap',
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON', SystemLogLevel: 'WARN' }),
      DeadLetterConfig: Match.absent(), // failed invocations go to the OnFailure destination instead
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1024, Timeout: 600,
      Environment: { Variables: Match.objectLike({ WINDOW_MINUTES: '60', VARIANT_NAME: 'AllTraffic', CAPTURE_MODE: 'realtime' }) },
    });
  });

  it('gives every rule target a retry policy and a dead-letter queue, and every queue a policy naming its rules', () => {
    const { t } = synth();
    const rules = t.findResources('AWS::Events::Rule');
    for (const [id, r] of Object.entries(rules)) {
      const [target] = r.Properties.Targets;
      assert.equal(target.RetryPolicy.MaximumRetryAttempts, 185, id);
      assert.ok(target.DeadLetterConfig.Arn['Fn::GetAtt'], `${id}: dead-letter queue`);
      assert.notEqual(target.Id, 'Target0', `${id}: a readable target id`);
    }
    const policies = Object.values(t.findResources('AWS::SQS::QueuePolicy'));
    assert.equal(policies.length, 5);
    const named = policies.flatMap((p) => p.Properties.PolicyDocument.Statement[0].Condition.ArnEquals['aws:SourceArn']);
    assert.equal(named.length, Object.keys(rules).length, 'each rule named by exactly one queue policy');
    // One Lambda permission per rule, for events.amazonaws.com from that rule.
    t.resourceCountIs('AWS::Lambda::Permission', 14); // the five notification rules target the topic
    t.allResourcesProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', Action: 'lambda:InvokeFunction' });
  });

  it('records failed invocations with their error type in the function\'s queue (OnFailure), sqs:SendMessage only', () => {
    const { stack, loop, t } = synth();
    const fn = loop.functions.deployOnApproval;
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalId(stack, fn) }, MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 21600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(stack, loop.deadLetterQueues.deployOnApproval), 'Arn'] } } },
    });
    const policy = stack.resolve((fn.role!.node.findChild('DefaultPolicy').node.defaultChild as any).policyDocument);
    const grants = policy.Statement.filter((st: any) => JSON.stringify(st.Action).includes('sqs:'));
    assert.deepEqual(grants.map((st: any) => st.Action), ['sqs:SendMessage']);
  });

  it('notifies people through one encrypted topic: outcome rules with readable messages, operational alarms', () => {
    const { stack, loop, t } = synth({ notificationEmail: 'ops@example.com' });
    const topicId = logicalId(stack, loop.topic);
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { Ref: logicalId(stack, loop.notificationKey) } });
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: { Ref: topicId } });
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['driftloop'], 'detail-type': ['Retraining Started'] },
      Targets: [Match.objectLike({
        Id: 'notifications', Arn: { Ref: topicId },
        InputTransformer: {
          InputPathsMap: Match.objectLike({ pipeline: '$.detail.pipelineName' }),
          InputTemplate: Match.stringLikeRegexp('^"driftloop: retraining started'),
        },
      })],
    });
    // Every operational alarm notifies the topic, and the topic's policy admits exactly those alarms.
    const ops = Object.values(loop.operationalAlarms);
    assert.equal(ops.length, 18);
    for (const a of ops) assert.deepEqual(stack.resolve((a.node.defaultChild as any).alarmActions), [{ Ref: topicId }]);
    const [topicPolicy] = Object.values(t.findResources('AWS::SNS::TopicPolicy'));
    const alarmsStatement = topicPolicy.Properties.PolicyDocument.Statement.find((st: any) => st.Sid === 'OperationalAlarmsPublish');
    assert.equal(alarmsStatement.Condition.ArnEquals['aws:SourceArn'].length, 18);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Duration', Threshold: 480000, Statistic: 'Maximum',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(stack, loop.functions.customMetrics) } }],
    });
  });

  it('scales a large window out to a state machine whose role grants exactly its own needs', () => {
    const { stack, loop, t } = synth({ scaleOutMaxConcurrency: 25 });
    const sm = t.findResources('AWS::StepFunctions::StateMachine');
    assert.equal(Object.keys(sm).length, 1);
    const [machine] = Object.values(sm);
    const definition = JSON.parse(machine.Properties.DefinitionString.replace('${MaxConcurrency}', '25'));
    assert.equal(definition.States.Workers.ItemProcessor.ProcessorConfig.Mode, 'DISTRIBUTED');
    assert.equal(definition.States.Workers.ToleratedFailureCount, 0);
    assert.equal(machine.Properties.DefinitionSubstitutions.MaxConcurrency, '25');
    assert.deepEqual(machine.Properties.TracingConfiguration, { Enabled: true });
    // The role's inline policy is its only grant (no CDK-added policy attached to it).
    const roleId = machine.Properties.RoleArn['Fn::GetAtt'][0];
    const attached = Object.values(t.findResources('AWS::IAM::Policy')).filter((pl) => JSON.stringify(pl.Properties.Roles).includes(`"${roleId}"`));
    assert.equal(attached.length, 0);
    const env = stack.resolve((loop.functions.customMetrics.node.defaultChild as any).environment).variables;
    assert.ok(JSON.stringify(env.SCALE_OUT_STATE_MACHINE_ARN).includes('-scale-out'));
  });

  it('routes package approvals of its group to deploy-on-approval', () => {
    const { t } = synth({ modelPackageGroupName: 'fraud' });
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.sagemaker'], 'detail-type': ['SageMaker Model Package State Change'],
        // With a catalogue, also every group under CatalogueNamePrefix (issue 15).
        detail: { ModelPackageGroupName: { 'Fn::If': [Match.anyValue(), ['fraud', Match.objectLike({ prefix: Match.anyValue() })], ['fraud']] }, ModelApprovalStatus: ['Approved', 'Rejected'] },
      },
      Targets: [Match.objectLike({ Id: 'deploy-on-approval', RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 } })],
    });
  });

  it('puts the staging custom-metrics function and everything of it under MonitorsStagingToo', () => {
    const { stack, loop, t } = synth();
    const cond = stack.getLogicalId(loop.conditions.MonitorsStagingToo);
    const fnId = logicalId(stack, loop.functions.customMetricsStaging);
    const resources = t.toJSON().Resources as Record<string, any>;
    assert.equal(resources[fnId].Condition, cond);
    const roleId = logicalId(stack, loop.functions.customMetricsStaging.role as any);
    assert.equal(resources[roleId].Condition, cond);
    const related = Object.entries(resources).filter(([, r]) => JSON.stringify(r).includes(`"${fnId}"`));
    assert.ok(related.length >= 4, 'policy, invoke config, log-group-using function, rule, permission');
    // (HasStagingGroundTruth, of the staging ground-truth rule, implies MonitorsStagingToo.)
    const allowed = [cond, stack.getLogicalId(loop.conditions.HasStagingGroundTruth)];
    for (const [id, r] of related) {
      // The shared dashboard and topic policy name its parts under Fn::If.
      if (['AWS::CloudWatch::Dashboard', 'AWS::SNS::TopicPolicy'].includes(r.Type)) continue;
      assert.ok(allowed.includes(r.Condition), `${id} (${r.Type}) refers to the staging function: under its condition`);
    }
    // Its queue's policy names the ground-truth rule under that rule's own condition.
    const policy = Object.values(t.findResources('AWS::SQS::QueuePolicy'))
      .map((p) => JSON.stringify(p)).find((p) => p.includes(logicalId(stack, loop.rules.StagingGroundTruthRule)));
    assert.match(policy!, new RegExp(`"Fn::If":\\["${stack.getLogicalId(loop.conditions.HasStagingGroundTruth)}"`));
  });

  it('has the template conditions, evaluated from the props', () => {
    const { stack, loop } = synth({ productionEndpointName: '' });
    const expr = stack.resolve((loop.conditions.HasProduction as any).expression);
    assert.deepEqual(expr, { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
  });

  it('checks literal props against the template parameters\' constraints', () => {
    assert.throws(() => synth({ windowMinutes: 7 as any }), /windowMinutes = 7 is not one of/);
    assert.throws(() => synth({ modelPackageGroupName: 'Upper_Case' }), /modelPackageGroupName .* does not match/);
    assert.throws(() => synth({ captureSamplingPercentage: 0 }), /captureSamplingPercentage = 0 is below 1/);
    assert.throws(() => synth({ sageMakerExecutionRoleArn: undefined as any }), /sageMakerExecutionRoleArn is required/);
    assert.doesNotThrow(() => synth({ windowMinutes: 1440, problemType: 'Regression', metricName: 'rmse' }));
  });

  it('composes: two loops in one stack, their members usable', () => {
    const stack = new Stack(app(), 'Two');
    const churn = new DriftLoop(stack, 'Churn', { sageMakerExecutionRoleArn: ROLE, loopName: 'churn' });
    const fraud = new DriftLoop(stack, 'Fraud', {
      sageMakerExecutionRoleArn: ROLE, loopName: 'fraud', modelPackageGroupName: 'fraud', stagingEndpointName: 'fraud-staging',
      productionEndpointName: '',
    });
    const ops = new iam.Role(stack, 'Ops', { assumedBy: new iam.AccountRootPrincipal() });
    churn.controlBus.grantPutEventsTo(ops);
    fraud.bucket.grantRead(ops);
    new events.Rule(stack, 'Deployed', {
      eventBus: churn.bus, eventPattern: { source: ['driftloop'], detailType: ['Model Deployed'] },
      targets: [new targets.LambdaFunction(fraud.functions.getApprovedModel)],
    });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Lambda::Function', 10);
    t.hasResourceProperties('AWS::Events::EventBus', { Name: 'churn-control' });
    t.hasResourceProperties('AWS::Events::EventBus', { Name: 'fraud-control' });
    t.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/driftloop/fraud/custom-metrics' });
    t.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'churn-driftloop' });
  });

  it('keeps template.yaml\'s logical IDs with samLogicalIds, CDK\'s own without', () => {
    const sam = synth({ samLogicalIds: true });
    const ids = Object.keys(sam.t.toJSON().Resources);
    for (const id of ['DataBucket', 'DataBucketPolicy', 'CustomMetricsFunction', 'CustomMetricsFunctionRole',
      'CustomMetricsFunctionRolePolicy', 'CustomMetricsInvokeConfig', 'GroundTruthRule', 'GroundTruthPermission',
      'CustomMetricsDLQPolicy', 'ModelQualityAlarm', 'DriftAlarm5', 'ControlBus', 'Dashboard', 'NotificationTopic',
      'NotificationKey', 'NotificationKeyAlias', 'NotificationTopicPolicy', 'NotificationEmailSubscription',
      'CustomMetricsStagingDLQPolicy', 'NotifyViolationsRule', 'CustomMetricsDurationAlarm']) {
      assert.ok(ids.includes(id), id);
    }
    const cdk = synth();
    assert.ok(!Object.keys(cdk.t.toJSON().Resources).includes('DataBucket'));
    assert.ok(logicalId(cdk.stack, cdk.loop.bucket).startsWith('LoopDataBucket'));
  });
});

describe('DriftLoopStack (the app)', () => {
  it('takes template.yaml\'s parameters and retains the data bucket', () => {
    const stack = new DriftLoopStack(app(), 'driftloop');
    const t = Template.fromStack(stack);
    const params = Object.keys(t.toJSON().Parameters).filter((p) => !p.startsWith('BootstrapVersion'));
    assert.deepEqual(params.sort(), Object.keys(PARAMETERS).sort());
    t.hasParameter('WindowMinutes', { Type: 'Number', Default: 60 });
    t.hasParameter('SageMakerExecutionRoleArn', { Type: 'String', Default: Match.absent() });
    t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    t.hasResourceProperties('AWS::S3::Bucket', { NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } } });
    t.resourceCountIs('Custom::S3BucketNotifications', 0);
    t.hasOutput('DeadLetterQueueUrls', {});
  });
});
